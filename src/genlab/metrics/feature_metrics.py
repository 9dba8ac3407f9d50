"""FID, KID, IS and precision/recall on the features of any :class:`FeatureExtractor`.

FID, KID and IS are torchmetrics' own classes, given a :class:`FeatureView` as their custom ``feature`` module
(their states, ``update``, ``reset`` and distributed sync; KID's ``compute``; FID's final matrix square root is
:func:`frechet_distance` and IS's score :func:`inception_score`, see there why); precision/recall is
torch-fidelity's k-NN manifold estimate (Kynkäänniemi et al. 2019) on the same features. What genlab adds:

* ``update(samples)`` takes the sampling contract's images in [-1, 1] directly (``real=False`` by default);
* ``prepare(datamodule)`` loads the real-data side from the reference-feature cache instead of feeding real
  images through the network on every run (:mod:`genlab.metrics.reference`), and ``reset()`` keeps it (for IS:
  the real images' own score, reported next to the generated one);
* errors that name the config key to change.
"""

import logging
import math
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

log = logging.getLogger(__name__)


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
        self._computed = None  # torchmetrics caches compute() until update()/reset(); new real data changes it
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
    """Squared MMD with a cubic polynomial kernel (KID, Bińkowski et al. 2018): unbiased, so usable at the small
    sample counts of in-training evaluation. ``compute()`` returns torchmetrics' ``(mean, std)`` over ``subsets``
    random subsets of ``subset_size`` images. With fewer images than that (``eval.py num_samples=500`` against
    ``subset_size: 1000``) it scores subsets of all it has instead, and warns (see :meth:`compute`)."""

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
        self._fallbacks_reported: set[tuple[int, int]] = set()

    def update(self, images: Tensor, real: bool = False) -> None:
        super().update(images, real)

    def load_reference(self, features: Tensor) -> None:
        self.real_features = [features.to(self.device)]

    def compute(self) -> tuple[Tensor, Tensor]:
        """torchmetrics' KID with ``subset_size`` lowered to ``min(generated, real)`` when fewer images exist.

        KID is unbiased at any subset size (only its variance grows as subsets shrink), so a smaller run still gets
        a valid number instead of an error at the end of a long evaluation. The lowered size is logged (once per
        metric and size), since values at different subset sizes have different spreads, and only used for this
        call: ``subset_size`` stays the configured one for the next, possibly larger, evaluation.
        """
        if not self.real_features:
            raise self._missing_reference()
        n_real = sum(f.shape[0] for f in self.real_features)
        n_fake = sum(f.shape[0] for f in self.fake_features)
        usable = min(n_real, n_fake)
        if usable < 2:
            raise ValueError(
                f"KID needs at least 2 generated and 2 real images, but has {n_fake} generated and {n_real} real ones. "
                f"Raise num_samples (eval.py) / callbacks.sample_metrics.num_samples, or metrics.real_samples."
            )
        if usable >= self.subset_size:
            return super().compute()
        configured = self.subset_size
        raise_what = [
            *(["num_samples (eval.py) / callbacks.sample_metrics.num_samples"] if n_fake < configured else []),
            *(["metrics.real_samples (the training split has to hold that many)"] if n_real < configured else []),
        ]
        # Once per metric and size: the SampleMetrics callback computes every few hundred steps with the same count.
        report = log.warning if (configured, usable) not in self._fallbacks_reported else log.debug
        self._fallbacks_reported.add((configured, usable))
        report(
            f"KID: subset_size={configured} is configured but there are only {n_fake} generated and {n_real} real "
            f"images, so this evaluation uses subsets of {usable} (KID stays unbiased; its spread grows). For "
            f"subsets of {configured}, raise {' and '.join(raise_what)} to at least {configured}; "
            f"metrics.kid.subset_size={usable} makes this size the configured one."
        )
        self.subset_size = usable
        try:
            return super().compute()
        finally:
            self.subset_size = configured


def inception_score(logits: Tensor, splits: int = 10, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Inception Score ``exp(E_x KL(p(y|x) || p(y)))`` (Salimans et al. 2016) of class ``logits`` (N, K): mean and
    std over ``splits`` random, equal parts, p(y) being each part's mean prediction.

    The same computation as torchmetrics' ``InceptionScore.compute`` (random permutation, ``chunk``, unbiased std;
    here in float64), as a function so that the generated score and the real-data score it is shown next to are
    one formula; ``generator``
    makes the permutation reproducible (None: the global RNG, as torchmetrics). 1 when every image gets the same
    prediction, at most K for K balanced classes each predicted with certainty.
    """
    if logits.dim() != 2 or logits.shape[0] < splits:
        raise ValueError(
            f"The Inception Score over {splits} splits needs at least {splits} images' logits of shape (N, classes); "
            f"got shape {tuple(logits.shape)}. Raise num_samples or lower metrics.is.splits."
        )
    order = torch.randperm(logits.shape[0], generator=generator).to(logits.device)
    log_prob = logits[order].double().log_softmax(dim=1)
    scores = []
    for part in log_prob.chunk(splits, dim=0):
        log_marginal = part.exp().mean(dim=0, keepdim=True).log()
        scores.append((part.exp() * (part - log_marginal)).sum(dim=1).mean().exp())
    scores = torch.stack(scores)
    spread = scores.std() if splits > 1 else torch.tensor(math.nan, device=scores.device)  # one split: no spread
    return scores.mean().float(), spread.float()


class InceptionScore(ReferenceMixin, _InceptionScore):
    """Inception Score (Salimans et al. 2016) of a shared extractor's logits: InceptionV3's ``"logits_unbiased"``
    (the usual IS), or the MNIST classifier's ``"logits"`` ("classifier IS", at most 10 for 10 digits).

    IS needs no real data, but a bare number is hard to read: its scale depends on the classifier and on the data
    (how many classes the real images spread over, how confidently they are recognised). So :meth:`prepare` also
    scores the real training images (through the shared reference-feature cache: no extra pass over the images
    when FID/KID prepared on the same data), and ``compute()`` returns
    ``{"is": mean, "std": std, "real": real images' mean}`` (``metrics/is``, ``metrics/is_std``,
    ``metrics/is_real``); without :meth:`prepare`, ``{"is": mean, "std": std}``. Both use the same number of
    splits; the real score's permutation is seeded, so it is a fixed number per dataset.
    """

    real_score: float | None = None

    def __init__(
        self,
        extractor: FeatureExtractor,
        feature: str = "logits_unbiased",
        splits: int = 10,
        real_samples: int | None = 10000,
        cache_dir: str | Path | None = None,
        reference_batch_size: int = 250,
        **kwargs,
    ):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            super().__init__(feature=extractor.view(feature), splits=splits, normalize=False, **kwargs)
        self._init_reference(feature, real_samples, cache_dir, reference_batch_size)

    def load_reference(self, features: Tensor) -> None:
        """The real images' score from their logits, computed once here rather than at every evaluation."""
        mean, _ = inception_score(features, self.splits, torch.Generator().manual_seed(0))
        self.real_score = float(mean)

    def compute(self) -> dict[str, Tensor]:
        if not self.features:
            raise RuntimeError("InceptionScore.compute() before any update(): no generated samples were scored.")
        mean, std = inception_score(dim_zero_cat(self.features), self.splits)
        result = {"is": mean, "std": std}
        if self.real_score is not None:
            result["real"] = torch.tensor(self.real_score)
        return result


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
