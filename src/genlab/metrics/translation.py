"""Metrics for translators (pix2pix, CycleGAN, StarGAN, SRGAN): how close translations are to the ground truth, and
whether they keep what the source was.

Each one wants the condition (``wants_condition = True``): :func:`genlab.evaluation.score_samples` calls
``update(translations, sources)`` with the datamodule's seeded held-out sources, and the metric asks the datamodule
what it knows about those sources, through two duck-typed accessors (any datamodule, any translator):

* ``datamodule.true_target(sources)``, where ``datamodule.ground_truth_known``: the exact translation (paired data:
  the target halves of the same held-out pairs; ``mnist_thin2thick``: the known 3x3 dilation);
* ``datamodule.source_classes(sources)``: the class of each source (the embedded MNIST demos' digits).

A multi-domain translator (StarGAN) is handed a :class:`~genlab.data.batch.DomainTransfer` (sources and their target
domains) instead of source images; data whose styles are known (``mnist_domains``) answers for it too: the exact
translation into the target (``true_target(condition)``), the domain of any image (``read_domains``, the judge of
:class:`TargetDomainAccuracy`), and the grey digit each style hides (``digit_view``, for class preservation).

Data without them is refused in ``prepare`` with :class:`~genlab.metrics.UnsupportedDataError`, so the translation
metrics config (``on_unsupported_data: skip``) leaves those metrics out with one warning: unpaired photos get FID
only, facades get L1/PSNR/SSIM but no digit metrics, CelebA's domains get FID (``metrics=translation_inception``) only.

L1 is on the model's [-1, 1] scale (what pix2pix's L1 term minimises). PSNR and SSIM are torchmetrics' functions on
images rescaled to [0, 1] with ``data_range=1`` (the SR and translation papers' convention for 8-bit images / 255):
PSNR would be the same on [-1, 1] with ``data_range=2``, but SSIM's luminance and contrast constants are not
shift-invariant, so SSIM on [-1, 1] would be another number. All three are per-image scores averaged over the
images (PSNR of identical images is +inf).
"""

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from genlab.data.batch import DomainTransfer
from genlab.metrics.conditional import ClassifierReading
from genlab.metrics.extractors import FeatureExtractor, UnsupportedDataError
from genlab.metrics.reference import dataset_name


def is_image_batch(condition) -> bool:
    return isinstance(condition, Tensor) and condition.dim() == 4 and condition.is_floating_point()


def is_translation_condition(condition) -> bool:
    """A translator's condition: source images, or a multi-domain translator's sources with their target domains."""
    return is_image_batch(condition) or isinstance(condition, DomainTransfer)


def sources_of(condition: Tensor | DomainTransfer) -> Tensor:
    return condition.source if isinstance(condition, DomainTransfer) else condition


class GroundTruthMetric(Metric):
    """Mean of a per-image score of translations against the datamodule's ground truth (``true_target``)."""

    is_differentiable = False
    full_state_update = False
    wants_condition = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.datamodule = None
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def prepare(self, datamodule) -> None:
        if not getattr(datamodule, "ground_truth_known", False) or not callable(getattr(datamodule, "true_target", None)):
            raise UnsupportedDataError(
                f"{type(self).__name__} compares translations with their ground truth, which {dataset_name(datamodule)} "
                "does not have (it needs paired data, e.g. data=paired or mnist_edges2digits, or a known mapping such "
                "as mnist_thin2thick's or mnist_domains' styles)"
            )
        self.datamodule = datamodule

    def update(self, samples: Tensor, condition: Tensor | DomainTransfer | None = None) -> None:
        if not is_translation_condition(condition):
            return  # not a translator's sources: nothing to compare
        if self.datamodule is None:
            raise RuntimeError(f"{type(self).__name__}: call prepare(datamodule) before update (SampleMetrics and eval.py do).")
        target = self.datamodule.true_target(condition).to(samples.device, samples.dtype)
        if target.shape != samples.shape:
            raise ValueError(
                f"{type(self).__name__}: translations of shape {tuple(samples.shape)} but ground truth of shape "
                f"{tuple(target.shape)}; the model must produce images of the data's target size and channels."
            )
        scores = self.score(samples.float(), target.float())
        self.total += scores.double().sum()
        self.count += len(scores)

    def score(self, samples: Tensor, target: Tensor) -> Tensor:
        """Per-image scores (N,) of ``samples`` against ``target``, both in [-1, 1]."""
        raise NotImplementedError

    def compute(self) -> Tensor | dict:
        if int(self.count) == 0:
            return {}  # no translator's samples were scored (another model kind): no value
        return (self.total / self.count).float()


def unit_range(images: Tensor) -> Tensor:
    return images.clamp(-1, 1).add(1).div(2)


class GroundTruthL1(GroundTruthMetric):
    """Mean absolute error per pixel on [-1, 1] (pix2pix's L1 term, Isola et al. 2017 Eq. 3); 0 = exact."""

    higher_is_better = False

    def score(self, samples: Tensor, target: Tensor) -> Tensor:
        return (samples - target).abs().flatten(1).mean(1)


class GroundTruthPSNR(GroundTruthMetric):
    """Peak signal-to-noise ratio in dB, per image on [0, 1] (``data_range=1``), averaged; +inf for exact images."""

    higher_is_better = True

    def score(self, samples: Tensor, target: Tensor) -> Tensor:
        return peak_signal_noise_ratio(unit_range(samples), unit_range(target), data_range=1.0, reduction="none", dim=(1, 2, 3))


class GroundTruthSSIM(GroundTruthMetric):
    """Structural similarity (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, k1 0.01, k2 0.03), per image on
    [0, 1] (``data_range=1``), averaged; 1 for exact images."""

    higher_is_better = True

    def score(self, samples: Tensor, target: Tensor) -> Tensor:
        return structural_similarity_index_measure(unit_range(samples), unit_range(target), data_range=1.0, reduction="none")


class ClassPreservation(ClassifierReading):
    """The share of translations that a classifier trained on real data (the shipped MNIST classifier) assigns to the
    class of their *source*: does the translator keep the digit? The FCN-score idea of pix2pix (Isola et al. 2017,
    Sec. 4.2: an off-the-shelf classifier reads the translations) for digits. The classifier's own accuracy on real
    target-domain digits is its ceiling. Multi-domain translations are read through ``datamodule.digit_view`` (the
    grey digit each target style hides: the classifier reads grey digits, not orange or inverted ones)."""

    def __init__(self, extractor: FeatureExtractor, feature: str = "logits", check_samples: int = 1000, cache_dir=None, **kwargs):
        super().__init__(extractor, feature, check_samples, cache_dir, **kwargs)
        self.datamodule = None
        self.add_state("correct", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def prepare(self, datamodule) -> None:
        """Needs the classes of the sources (``datamodule.source_classes``); the classifier vets the target
        domain's real images as for FID (the MNIST classifier refuses colour images and non-digits), except on
        multi-domain digits, whose labels are domains: there it reads their grey ``digit_view``, grey by construction."""
        if not callable(getattr(datamodule, "source_classes", None)):
            raise UnsupportedDataError(
                f"ClassPreservation needs the classes of the sources, which {dataset_name(datamodule)} does not know "
                "(the embedded MNIST demos do: datamodule.source_classes)"
            )
        if not callable(getattr(datamodule, "digit_view", None)):
            self.vet(datamodule)
        self.datamodule = datamodule

    def update(self, samples: Tensor, condition: Tensor | DomainTransfer | None = None) -> None:
        if not is_translation_condition(condition):
            return
        if self.datamodule is None:
            raise RuntimeError("ClassPreservation: call prepare(datamodule) before update (SampleMetrics and eval.py do).")
        if isinstance(condition, DomainTransfer):
            samples = self.datamodule.digit_view(samples, condition.target)
        classes = self.datamodule.source_classes(sources_of(condition)).to(samples.device)
        predicted = self.classifier(samples).argmax(dim=1)
        self.correct += (predicted == classes).sum()
        self.total += len(classes)

    def compute(self) -> Tensor | dict:
        if int(self.total) == 0:
            return {}
        return (self.correct.double() / self.total).float()


class TargetDomainAccuracy(Metric):
    """The share of multi-domain translations that land in their target domain, judged by the data's own style reader
    (``datamodule.read_domains``: for mnist_domains a fixed rule on colour, background and stroke width) rather than by
    the run's D, which G is trained to satisfy. StarGAN's quantitative test (Choi et al. 2018, Table 3: a classifier
    trained on real images reads the translations' domain) with a reader that needs no training. Exact translations
    score about the reader's accuracy on real images (97-99 %); the identity map about 0 (targets are other domains). The reader ignores which digit is drawn: that is class preservation's job."""

    higher_is_better = True
    is_differentiable = False
    full_state_update = False
    wants_condition = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.datamodule = None
        self.add_state("correct", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def prepare(self, datamodule) -> None:
        if not callable(getattr(datamodule, "read_domains", None)):
            raise UnsupportedDataError(
                f"TargetDomainAccuracy reads the domain of translations with the data's own reader, which "
                f"{dataset_name(datamodule)} does not have (data with known styles does: data=mnist_domains)"
            )
        self.datamodule = datamodule

    def update(self, samples: Tensor, condition: DomainTransfer | None = None) -> None:
        if not isinstance(condition, DomainTransfer):
            return  # not a multi-domain translation
        if self.datamodule is None:
            raise RuntimeError("TargetDomainAccuracy: call prepare(datamodule) before update (SampleMetrics and eval.py do).")
        read = self.datamodule.read_domains(samples)
        self.correct += (read == condition.target.to(read.device)).sum()
        self.total += len(read)

    def compute(self) -> Tensor | dict:
        if int(self.total) == 0:
            return {}
        return (self.correct.double() / self.total).float()
