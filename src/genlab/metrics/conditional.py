"""Conditional accuracy: does a class-conditional model draw the class it is asked for?

The share of class-conditional samples that a classifier trained on real data (the shipped MNIST classifier)
assigns to the requested class, overall and per class: the "GAN-test" accuracy of Shmelkov, Schmid & Alahari 2018
("How good is my GAN?", Sec. 4), the sample-side half of the classification-accuracy-score idea (Ravuri & Vinyals
2019 train on samples and test on real data instead). Chance is 1/K; a model that ignores its labels scores about
that however good its samples look, which FID and class coverage cannot tell.

It needs the labels each sample was drawn for, so it declares ``wants_condition = True`` and
:func:`genlab.evaluation.score_samples` calls ``update(samples, condition)``. Models without label conditioning
(``condition`` is ``None``, or source images) leave it empty and ``compute()`` returns no values: it sits in the
default metric list and is logged only for the models it applies to.
"""

import torch
from torch import Tensor
from torchmetrics import Metric

from genlab.metrics.extractors import FeatureExtractor
from genlab.metrics.reference import reference_features


class ClassifierReading(Metric):
    """What the metrics that read samples with a classifier trained on real data share (conditional accuracy, class
    preservation of translations): the classifier's ``feature`` view, and :meth:`vet`, which lets the classifier
    vet the real data as :class:`~genlab.metrics.ClassCoverage` does (the MNIST classifier refuses data it cannot
    read), sharing the reference pass and cache of the other classifier metrics. Scored on the samples' condition."""

    higher_is_better = True
    is_differentiable = False
    full_state_update = False
    wants_condition = True

    def __init__(self, extractor: FeatureExtractor, feature: str = "logits", check_samples: int = 1000, cache_dir=None, **kwargs):
        super().__init__(**kwargs)
        self.classifier = extractor.view(feature)
        self.feature = feature
        self.check_samples = check_samples
        self.cache_dir = cache_dir
        self.reference_info: dict | None = None

    def vet(self, datamodule) -> None:
        reference = reference_features(
            self.classifier.extractor, datamodule, [self.feature], self.check_samples, cache_dir=self.cache_dir, device=self.device
        )
        self.reference_info = reference.info


class ConditionalAccuracy(ClassifierReading):
    """``compute()`` returns ``acc`` (all samples) and ``acc_<c>`` (the samples drawn for class c; NaN for a class
    no sample was drawn for). With the config name ``cond``: ``metrics/cond_acc``, ``metrics/cond_acc_<c>``."""

    def __init__(self, extractor: FeatureExtractor, feature: str = "logits", check_samples: int = 1000, cache_dir=None, **kwargs):
        super().__init__(extractor, feature, check_samples, cache_dir, **kwargs)
        self.num_classes = self.classifier.num_features
        self.add_state("correct", torch.zeros(self.num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros(self.num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def prepare(self, datamodule) -> None:
        self.vet(datamodule)

    def update(self, samples: Tensor, condition: Tensor | None = None) -> None:
        if not isinstance(condition, Tensor) or condition.dim() != 1 or condition.is_floating_point():
            return  # not class-conditional samples: nothing to score
        if len(condition) and (int(condition.min()) < 0 or int(condition.max()) >= self.num_classes):
            raise ValueError(
                f"ConditionalAccuracy: the samples were drawn for labels {int(condition.min())}..{int(condition.max())}, "
                f"but the classifier knows classes 0..{self.num_classes - 1}; score data whose classes are its classes."
            )
        predicted = self.classifier(samples).argmax(dim=1)
        condition = condition.to(predicted.device, torch.long)
        self.total += torch.bincount(condition, minlength=self.num_classes).to(self.total)
        self.correct += torch.bincount(condition[predicted == condition], minlength=self.num_classes).to(self.correct)

    def compute(self) -> dict[str, Tensor]:
        if int(self.total.sum()) == 0:
            return {}
        per_class = self.correct.double() / self.total.double()  # NaN where no sample was drawn for the class
        return {
            "acc": (self.correct.sum().double() / self.total.sum()).float(),
            **{f"acc_{c}": per_class[c].float() for c in range(self.num_classes)},
        }
