"""Super-resolution data from any image datamodule: the high-resolution (HR) images and their bicubic downsampling.

The SRGAN protocol (Ledig et al. 2017, Sec. 3.2): LR images are the HR images downsampled bicubically by the scale
factor r (MATLAB's ``imresize``: bicubic, a = -0.5, antialiased), so the pairs are made, not collected. Here the
downsampling is ``torch.nn.functional.interpolate(mode="bicubic", antialias=True)``, torch's port of that kernel
(PIL's and MATLAB's ``imresize``), and the LR images are rounded to 8 bits, as the paper's LR files are.

:class:`SuperResolutionDataModule` wraps the datamodule that reads the HR images (``data.high_resolution``: the
MNIST-5k digits at 32 px for the demo ``data=mnist5k_sr``, a DIV2K-style folder for ``data=sr_folder``) and keeps
its train/val split. Batches: ``images`` = HR (what the model produces), ``source`` = LR, ``labels`` as the wrapped
data has them. ``conditions(n, "source", seed)`` are held-out LR images, and :meth:`SuperResolutionDataModule.
high_resolution_of` gives back their HR images, so PSNR/SSIM score the seeded conditions every model is sampled with.

HR images larger than ``data.image_size`` (a folder read at ``data.high_resolution.image_size``) are cropped to it:
a random crop per training item (the paper's 96 x 96 HR patches) and the central crop everywhere else.
"""

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from genlab.data.base import ImageDataModule


def quantize(images: Tensor) -> Tensor:
    """[-1, 1] floats rounded to the 256 levels of an 8-bit image (kept in [-1, 1])."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def bicubic_downsample(images: Tensor, scale_factor: int) -> Tensor:
    """HR (N, C, H, W) in [-1, 1] -> LR (N, C, H / r, W / r): antialiased bicubic (imresize), rounded to 8 bits."""
    size = (images.shape[-2] // scale_factor, images.shape[-1] // scale_factor)
    return quantize(F.interpolate(images, size=size, mode="bicubic", antialias=True, align_corners=False))


def bicubic_upsample(images: Tensor, size: tuple[int, int]) -> Tensor:
    """LR -> ``size`` by bicubic interpolation, clamped to [-1, 1]: the baseline every SR result is compared with."""
    return F.interpolate(images.float(), size=size, mode="bicubic", align_corners=False).clamp(-1, 1)


class HighLowPairs(Dataset):
    """``(hr, label, lr)`` items from a dataset of ``(hr, label)``: HR cropped to ``crop_size`` (centre, or random
    with ``random_crop``), LR its bicubic downsampling."""

    def __init__(self, images: Dataset, scale_factor: int, crop_size: int, random_crop: bool = False):
        self.images, self.scale_factor, self.crop_size, self.random_crop = images, scale_factor, crop_size, random_crop

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, int, Tensor]:
        hr, label = self.images[index][:2]
        hr = self.crop(hr)
        return hr, label, bicubic_downsample(hr[None], self.scale_factor)[0]

    def crop(self, hr: Tensor) -> Tensor:
        height, width = hr.shape[-2:]
        if (height, width) == (self.crop_size, self.crop_size):
            return hr
        if self.random_crop:  # torch's global RNG: seed_everything(..., workers=True) makes the crops reproducible
            top, left = (int(torch.randint(side - self.crop_size + 1, ())) for side in (height, width))
        else:
            top, left = (height - self.crop_size) // 2, (width - self.crop_size) // 2
        return hr[..., top : top + self.crop_size, left : left + self.crop_size]


class SuperResolutionDataModule(ImageDataModule):
    """HR images from ``high_resolution`` (any genlab image datamodule) with their LR versions as ``source``.

    ``channels``, ``image_size`` (the HR size the model produces) and ``num_classes`` are what nets and metrics read
    (``${data.channels}``, ...); the wrapped datamodule must agree on channels and classes and have images at least
    ``image_size`` large. ``scale_factor`` must divide ``image_size``: LR images are ``image_size / scale_factor``.
    """

    def __init__(
        self,
        high_resolution: ImageDataModule,
        scale_factor: int,
        channels: int,
        image_size: int,
        num_classes: int,
        batch_size: int = 16,
        num_workers: int = 0,
        pin_memory: bool = False,
    ):
        super().__init__(channels, image_size, num_classes, batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory)
        if scale_factor < 2 or image_size % scale_factor:
            raise ValueError(
                f"data.scale_factor={scale_factor} must be an integer >= 2 that divides data.image_size={image_size} "
                f"(LR images are image_size / scale_factor pixels): pick a divisor such as "
                f"{', '.join(str(s) for s in (2, 4, 8) if image_size % s == 0) or 'none: change data.image_size'}."
            )
        wrapped = {"channels": high_resolution.channels, "num_classes": high_resolution.num_classes}
        mismatched = [f"data.high_resolution.{k}={v} but data.{k}={getattr(self, k)}" for k, v in wrapped.items() if v != getattr(self, k)]
        if high_resolution.image_size < image_size:
            mismatched.append(f"data.high_resolution.image_size={high_resolution.image_size} is below data.image_size={image_size}")
        if mismatched:
            raise ValueError(
                f"SuperResolutionDataModule: {'; '.join(mismatched)}. The wrapped datamodule reads the HR images the "
                "model produces: set its channels and num_classes to data.channels and data.num_classes (the shipped "
                "configs interpolate them) and its image_size to at least data.image_size (larger images are cropped)."
            )
        self.high_resolution = high_resolution
        self.scale_factor = scale_factor
        self.source_channels = channels
        self.source_size = image_size // scale_factor
        self._index: dict[bytes, int] | None = None

    def prepare_data(self) -> None:
        self.high_resolution.prepare_data()  # downloads, for torchvision datasets with data.download=true

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        self.high_resolution.setup("fit")
        return tuple(
            HighLowPairs(split, self.scale_factor, self.image_size)
            for split in (self.high_resolution.train_set, self.high_resolution.val_set)
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        if self.high_resolution.image_size == self.image_size:
            return super().train_dataloader()
        training_view = HighLowPairs(self.high_resolution.train_set, self.scale_factor, self.image_size, random_crop=True)
        return self._loader(training_view, shuffle=True, drop_last=len(training_view) > self.batch_size)

    def high_resolution_of(self, sources: Tensor) -> Tensor:
        """The HR images (N, C, H, W) of LR ``sources`` that :meth:`conditions` handed out, found by their 8-bit
        pixels in the split conditions come from; sources from anywhere else are refused (their HR is unknown)."""
        dataset = self._split_for("source")
        if self._index is None:
            self._index = {}
            for i in range(len(dataset)):
                self._index.setdefault(_pixel_key(dataset[i][2]), i)
        found = [self._index.get(_pixel_key(source)) for source in sources]
        if None in found:
            raise KeyError(
                f"{found.count(None)} of {len(sources)} LR images are not in the held-out split of this datamodule, so "
                "their HR images are unknown: score the seeded conditions it hands out (conditions(n, 'source', seed))."
            )
        return torch.stack([dataset[i][0] for i in found]).to(sources.device)


def _pixel_key(image: Tensor) -> bytes:
    return ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy().tobytes()
