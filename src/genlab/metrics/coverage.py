"""Class coverage: which classes a classifier sees in the generated samples, the image analogue of counting the
modes of a toy mixture. A mode-collapsed GAN on MNIST draws a few digits well: its FID may look fine while
coverage says "6 of 10 digits"."""

import torch
from torch import Tensor
from torchmetrics import Metric

from genlab.metrics.divergences import kl_to_uniform
from genlab.metrics.extractors import FeatureExtractor
from genlab.metrics.reference import reference_features


class ClassCoverage(Metric):
    """Histogram of the classes predicted for generated samples.

    ``compute()`` returns

    * ``covered``: classes receiving at least ``min_share`` of a uniform share of the samples (with 10 classes and
      the default 0.1: at least 1% of the samples each), so a handful of misclassified blobs does not count as a
      covered class;
    * ``kl_uniform``: KL(predicted class distribution || uniform) in nats, 0 for perfect balance, log(K) when every
      sample lands in one class;
    * ``fraction_<c>``: the share of samples predicted as class c (the histogram).
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(
        self,
        extractor: FeatureExtractor,
        feature: str = "logits",
        min_share: float = 0.1,
        check_samples: int = 1000,
        cache_dir=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 < min_share <= 1.0:
            raise ValueError(f"ClassCoverage min_share must be in (0, 1], got {min_share}.")
        self.classifier = extractor.view(feature)
        self.num_classes = self.classifier.num_features
        self.min_share = min_share
        self.check_samples = check_samples
        self.cache_dir = cache_dir
        self.feature = feature
        self.reference_info: dict | None = None
        self.add_state("counts", torch.zeros(self.num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def prepare(self, datamodule) -> None:
        """Let the classifier vet the real data (it refuses data it cannot read, e.g. colour images for the MNIST
        classifier) on ``check_samples`` training images; records its accuracy there in ``reference_info``."""
        reference = reference_features(
            self.classifier.extractor, datamodule, [self.feature], self.check_samples, cache_dir=self.cache_dir, device=self.device
        )
        self.reference_info = reference.info

    def update(self, images: Tensor) -> None:
        predicted = self.classifier(images).argmax(dim=1)
        self.counts += torch.bincount(predicted, minlength=self.num_classes).to(self.counts)

    def compute(self) -> dict[str, Tensor]:
        total = self.counts.sum()
        if total == 0:
            raise RuntimeError("ClassCoverage.compute() before any update(): no samples were classified.")
        fractions = self.counts.double() / total
        covered = (self.counts.double() >= self.min_share * total / self.num_classes).sum()
        return {
            "covered": covered.float(),
            "kl_uniform": kl_to_uniform(self.counts),
            **{f"fraction_{c}": fractions[c].float() for c in range(self.num_classes)},
        }
