"""FID, KID, IS and precision/recall on the features of any :class:`FeatureExtractor`.

FID, KID and IS are torchmetrics' own classes, given a :class:`FeatureView` as their custom ``feature`` module
(their states, ``update``, ``reset`` and distributed sync; KID's and IS's ``compute``; FID's final matrix square
root is :func:`frechet_distance`, see there why); precision/recall is torch-fidelity's k-NN manifold estimate
(Kynkäänniemi et al. 2019) on the same features. What genlab adds:

* ``update(samples)`` takes the sampling contract's images in [-1, 1] directly (``real=False`` by default);
* ``prepare(datamodule)`` loads the real-data side from the reference-feature cache instead of feeding real
  images through the network on every run (:mod:`genlab.metrics.reference`), and ``reset()`` keeps it;
* errors that name the config key to change.
"""

import warnings
from pathlib import Path

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore as _InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities import dim_zero_cat

from genlab.metrics.extractors import FeatureExtractor
from genlab.metrics.reference import ReferenceFeatures, reference_features


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> Tensor:
    """``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` between two Gaussians, in float64.

    ``Tr((S1 S2)^(1/2))`` is computed as the sum of square roots of the eigenvalues of the symmetric PSD matrix
    ``S1^(1/2) S2 S1^(1/2)`` (same spectrum as ``S1 S2``) with two ``eigh`` calls. torchmetrics takes ``eigvals`` of
    the non-symmetric ``S1 S2`` and pytorch-fid/torch-fidelity ``scipy.linalg.sqrtm``; same value, but at 2048
    dimensions on our CPU those take 2-3x longer, and the symmetric route cannot produce complex round-off.
    """
    mu1, mu2, sigma1, sigma2 = mu1.double(), mu2.double(), sigma1.double(), sigma2.double()
    eigenvalues, eigenvectors = torch.linalg.eigh(sigma1)
    sqrt_sigma1 = (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T
    middle = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    return (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt


class ReferenceMixin:
    """The real-data side of a metric, filled by :meth:`prepare` from the cached reference features."""

    feature: str
    real_samples: int | None
    cache_dir: str | Path | None
    reference_batch_size: int
    reference_info: dict | None = None

    def _init_reference(self, feature: str, real_samples: int | None, cache_dir, reference_batch_size: int) -> None:
        self.feature = feature
        self.real_samples = real_samples
        self.cache_dir = cache_dir
        self.reference_batch_size = reference_batch_size

    @property
    def extractor(self) -> FeatureExtractor:
        return self.inception.extractor

    def prepare(self, datamodule) -> ReferenceFeatures:
        reference = reference_features(
            self.extractor, datamodule, [self.feature], self.real_samples, self.reference_batch_size, self.cache_dir, device=self.device
        )
        self.load_reference(reference.features[self.feature])
        self.reference_info = reference.info
        return reference

    def load_reference(self, features: Tensor) -> None:
        raise NotImplementedError

    def _missing_reference(self) -> RuntimeError:
        return RuntimeError(
            f"{type(self).__name__} has no real-data statistics: call prepare(datamodule) (the SampleMetrics callback "
            "and eval.py do) or update(real_images, real=True) before compute()."
        )


class FrechetDistance(ReferenceMixin, FrechetInceptionDistance):
    """Fréchet distance between Gaussians fitted to real and generated features (FID with InceptionV3 "2048",
    "classifier FID" with the MNIST classifier's "features")."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        feature: str = "2048",
        real_samples: int | None = 10000,
        cache_dir: str | Path | None = None,
        reference_batch_size: int = 250,
        **kwargs,
    ):
        super().__init__(feature=extractor.view(feature), reset_real_features=False, normalize=False, **kwargs)
        self._init_reference(feature, real_samples, cache_dir, reference_batch_size)

    def update(self, images: Tensor, real: bool = False) -> None:
        super().update(images, real)

    def load_reference(self, features: Tensor) -> None:
        f = features.to(self.device, torch.float64)
        self.real_features_sum = f.sum(dim=0)
        self.real_features_cov_sum = f.T @ f
        self.real_features_num_samples = torch.tensor(f.shape[0], device=self.device)

    def compute(self) -> Tensor:
        """torchmetrics' means and covariances from its running sums, then :func:`frechet_distance`."""
        if self.real_features_num_samples < 2:
            raise self._missing_reference()
        if self.fake_features_num_samples < 2:
            raise RuntimeError("FID needs at least 2 generated samples.")
        mean_real, cov_real = _moments(self.real_features_sum, self.real_features_cov_sum, self.real_features_num_samples)
        mean_fake, cov_fake = _moments(self.fake_features_sum, self.fake_features_cov_sum, self.fake_features_num_samples)
        return frechet_distance(mean_real, cov_real, mean_fake, cov_fake).float()


def _moments(total: Tensor, outer_total: Tensor, n: Tensor) -> tuple[Tensor, Tensor]:
    mean = total / n
    return mean, (outer_total - n * torch.outer(mean, mean)) / (n - 1)


class KernelDistance(ReferenceMixin, KernelInceptionDistance):
    """Squared MMD with a cubic polynomial kernel (KID): unbiased, so usable at the small sample counts of in-training
    evaluation. ``compute()`` returns torchmetrics' ``(mean, std)`` over ``subsets`` random subsets."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        feature: str = "2048",
        subsets: int = 100,
        subset_size: int = 1000,
        real_samples: int | None = 10000,
        cache_dir: str | Path | None = None,
        reference_batch_size: int = 250,
        **kwargs,
    ):
        with warnings.catch_warnings():  # "will save all extracted features in buffer": that is the point here
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            super().__init__(
                feature=extractor.view(feature), subsets=subsets, subset_size=subset_size, reset_real_features=False, normalize=False, **kwargs
            )
        self._init_reference(feature, real_samples, cache_dir, reference_batch_size)

    def update(self, images: Tensor, real: bool = False) -> None:
        super().update(images, real)

    def load_reference(self, features: Tensor) -> None:
        self.real_features = [features.to(self.device)]

    def compute(self) -> tuple[Tensor, Tensor]:
        if not self.real_features:
            raise self._missing_reference()
        n_real = sum(f.shape[0] for f in self.real_features)
        n_fake = sum(f.shape[0] for f in self.fake_features)
        if min(n_real, n_fake) < self.subset_size:
            raise ValueError(
                f"KID draws subsets of subset_size={self.subset_size} images but has {n_fake} generated and {n_real} "
                f"real ones. Raise num_samples (eval.py) / callbacks.sample_metrics.num_samples, or lower "
                f"metrics.kid.subset_size."
            )
        return super().compute()


class InceptionScore(_InceptionScore):
    """torchmetrics' Inception Score on a shared extractor's logits; ``compute()`` returns ``(mean, std)``."""

    def __init__(self, extractor: FeatureExtractor, feature: str = "logits_unbiased", splits: int = 10, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            super().__init__(feature=extractor.view(feature), splits=splits, normalize=False, **kwargs)


class PrecisionRecall(ReferenceMixin, Metric):
    """Improved precision and recall (Kynkäänniemi et al. 2019) by torch-fidelity's ``prc_features_to_metric``.

    Precision: the share of generated samples inside the real manifold (the union of balls around real features
    reaching each one's ``neighborhood``-th nearest real neighbour); recall: the share of real samples inside the
    generated manifold. As in the paper, both sets have the same size: the larger one is subsampled (seeded).
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(
        self,
        extractor: FeatureExtractor,
        feature: str = "2048",
        neighborhood: int = 3,
        real_samples: int | None = 10000,
        cache_dir: str | Path | None = None,
        reference_batch_size: int = 250,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.inception = extractor.view(feature)
        self.neighborhood = neighborhood
        self.seed = seed
        self.reference: Tensor | None = None
        self._init_reference(feature, real_samples, cache_dir, reference_batch_size)
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def update(self, images: Tensor) -> None:
        self.fake_features.append(self.inception(images).float())

    def load_reference(self, features: Tensor) -> None:
        self.reference = features.float()

    def compute(self) -> dict[str, Tensor]:
        from torch_fidelity.metric_prc import prc_features_to_metric

        if self.reference is None:
            raise self._missing_reference()
        fake = dim_zero_cat(self.fake_features)
        real = self.reference.to(fake.device)
        n = min(len(fake), len(real))
        if n <= self.neighborhood:
            raise ValueError(f"Precision/recall with neighborhood={self.neighborhood} needs more than {self.neighborhood} samples; got {n}.")
        generator = torch.Generator().manual_seed(self.seed)
        fake = fake[torch.randperm(len(fake), generator=generator)[:n].to(fake.device)] if len(fake) > n else fake
        real = real[torch.randperm(len(real), generator=generator)[:n].to(real.device)] if len(real) > n else real
        values = prc_features_to_metric(
            fake, real, prc_neighborhood=self.neighborhood, prc_batch_size=10000, save_cpu_ram=n > 8192, verbose=False
        )
        return {name: torch.tensor(float(values[name])) for name in ("precision", "recall", "f_score")}
