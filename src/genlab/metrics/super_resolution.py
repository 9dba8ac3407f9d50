"""PSNR and SSIM of super-resolved images against their HR originals, next to the bicubic baseline.

The protocol of Ledig et al. 2017 (Sec. 3.1, Table 2; the one of the SR literature since Dong et al.'s SRCNN):

* on the luminance: Y of ITU-R BT.601 (MATLAB's ``rgb2ycbcr``), ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for
  R, G, B in [0, 1], so Y is in [16, 235]; kept in floating point, as BasicSR's ``test_y_channel``. For grayscale
  data Y is the grey value itself, 0..255;
* on 8-bit images: SR outputs and HR images are rounded to uint8 first (the PNGs ``eval.py`` writes);
* a border of ``crop_border`` pixels removed on every side (the paper: 4 at 4x; the presets: ``data.scale_factor``);
* PSNR with peak 255 and SSIM with an 11 x 11 Gaussian window (sigma 1.5), per image, then averaged (torchmetrics'
  functional ``peak_signal_noise_ratio`` / ``structural_similarity_index_measure``).

The paper's Set5 4x numbers with this protocol: bicubic 28.43 dB / 0.8211, SRResNet 32.05 dB / 0.9019, SRGAN
29.40 dB / 0.8472 (SRGAN trades PSNR for texture). Numbers on other images (MNIST digits) are not comparable with
those, only with each other and with the bicubic baseline each metric reports alongside.

The metrics plug into ``SampleMetrics`` / ``eval.py``: they get the model's samples for the datamodule's seeded LR
conditions (``wants_condition``) and look up the HR images of those conditions in the datamodule
(``high_resolution_of``; :class:`genlab.data.super_resolution.SuperResolutionDataModule`). Other data is refused
with :class:`~genlab.metrics.UnsupportedDataError` (the default metrics then skip them with a warning).
"""

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from genlab.data.super_resolution import bicubic_upsample
from genlab.metrics.extractors import UnsupportedDataError, to_uint8

#: ITU-R BT.601 luma for R, G, B in [0, 1], offset 16 (MATLAB rgb2ycbcr)
BT601_WEIGHTS = (65.481, 128.553, 24.966)
BT601_OFFSET = 16.0


def luminance(images: Tensor) -> Tensor:
    """Images in [-1, 1] (N, 1 or 3, H, W) -> their Y channel (N, 1, H, W) on the 0..255 scale, from 8-bit pixels:
    BT.601 luma for RGB, the grey value for grayscale."""
    pixels = to_uint8(images).double()
    if pixels.shape[1] == 1:
        return pixels
    if pixels.shape[1] != 3:
        raise ValueError(f"PSNR/SSIM on Y need 1- or 3-channel images, got {tuple(images.shape)}.")
    weights = pixels.new_tensor(BT601_WEIGHTS).view(1, 3, 1, 1) / 255.0
    return BT601_OFFSET + (pixels * weights).sum(1, keepdim=True)


class SuperResolutionMetric(Metric):
    """Mean of a per-image score on Y of the samples and of the bicubic upsampling of their LR conditions, both
    against the HR images; ``compute()`` returns ``{<name>: samples, "bicubic": baseline}``. Subclasses set
    :attr:`name` and :meth:`score`."""

    name: str
    wants_condition = True
    higher_is_better = True
    full_state_update = False

    def __init__(self, crop_border: int = 0, **kwargs):
        super().__init__(**kwargs)
        if crop_border < 0:
            raise ValueError(f"crop_border is a number of pixels and must be >= 0, got {crop_border}.")
        self.crop_border = crop_border
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("bicubic_total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")
        self.high_resolution_of = None

    def score(self, output: Tensor, target: Tensor) -> Tensor:
        """Per-image scores (N,) of Y images (N, 1, H, W) on the 0..255 scale."""
        raise NotImplementedError

    def prepare(self, datamodule) -> None:
        lookup = getattr(datamodule, "high_resolution_of", None)
        if not callable(lookup):
            raise UnsupportedDataError(
                f"metrics.{self.name} scores super-resolution against HR images, which {type(datamodule).__name__} "
                "does not provide: use super-resolution data (data=mnist5k_sr, data=sr_folder)."
            )
        self.high_resolution_of = lookup

    def update(self, samples: Tensor, condition: Tensor | None) -> None:
        if self.high_resolution_of is None:
            raise RuntimeError(f"metrics.{self.name} needs prepare(datamodule) first (SampleMetrics and eval.py call it).")
        if condition is None:
            raise ValueError(f"metrics.{self.name} scores a super-resolution model: it needs the LR condition of each sample.")
        target = self.high_resolution_of(condition).to(samples.device)
        if samples.shape != target.shape:
            raise ValueError(f"metrics.{self.name}: samples {tuple(samples.shape)} do not match the HR images {tuple(target.shape)}.")
        bicubic = bicubic_upsample(condition.to(samples.device), tuple(target.shape[-2:]))
        target_y = self._crop(luminance(target))
        self.total += self.score(self._crop(luminance(samples)), target_y).sum()
        self.bicubic_total += self.score(self._crop(luminance(bicubic)), target_y).sum()
        self.count += len(samples)

    def compute(self) -> dict[str, Tensor]:
        if self.count == 0:
            raise RuntimeError(f"metrics.{self.name} has no samples: update() was never called.")
        return {self.name: (self.total / self.count).float(), "bicubic": (self.bicubic_total / self.count).float()}

    def _crop(self, images: Tensor) -> Tensor:
        b = self.crop_border
        return images[..., b : images.shape[-2] - b, b : images.shape[-1] - b] if b else images


class PeakSignalToNoiseRatio(SuperResolutionMetric):
    """PSNR in dB on Y, peak 255 (logged as ``metrics/psnr`` and ``metrics/psnr_bicubic``)."""

    name = "psnr"

    def score(self, output: Tensor, target: Tensor) -> Tensor:
        return peak_signal_noise_ratio(output, target, data_range=255.0, reduction="none", dim=(1, 2, 3))


class StructuralSimilarity(SuperResolutionMetric):
    """SSIM on Y, 11 x 11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, L 255 (``metrics/ssim``, ``metrics/ssim_bicubic``)."""

    name = "ssim"

    def score(self, output: Tensor, target: Tensor) -> Tensor:
        return structural_similarity_index_measure(output, target, data_range=255.0, reduction="none")
