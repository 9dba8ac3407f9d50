"""What every translation reader shares: listing image files, decoding them with the file named on failure, the
pix2pix/CycleGAN transform drawn once and applied to several images, the training view that draws it, the layout
error and the datamodule base.

The transform follows the official code (junyanz/pytorch-CycleGAN-and-pix2pix ``data/base_dataset.py``,
``preprocess=resize_and_crop``): resize to ``load_size`` x ``load_size`` (bicubic, aspect ratio not kept), take a
random ``image_size`` crop, flip left-right with probability 1/2. At test time the official options set
``load_size = crop_size`` and ``no_flip``: resize to ``image_size``, no crop, no flip. Here that deterministic view is
what ``dataset[i]`` returns (held-out items, seeded conditions, reference features, anything that indexes a split);
only the training loader goes through :class:`TrainingView`, which draws the random crop/flip (and the random B of
unpaired data) from torch's global RNG, so ``seed_everything(..., workers=True)`` makes it reproducible.
"""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from genlab.data.base import ImageDataModule
from genlab.data.folder import IMAGE_EXTENSIONS
from genlab.data.torchvision_sets import MissingDatasetError

T = TypeVar("T")

#: pix2pix / CycleGAN: load_size 286, crop_size 256
OFFICIAL_LOAD_RATIO = 286 / 256


class MissingLayoutError(MissingDatasetError):
    """A root or split folder is missing or empty; the message names the expected layout and the fix."""


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive like the official ``make_dataset``, sorted for a stable order).

    Files are picked by extension, as ``data=folder`` does: other files (``.txt``, ``.json``, ``Thumbs.db``) are
    not images and are left alone. Hidden files and folders (``.DS_Store``, macOS ``._x.jpg`` resource forks that
    zips made on a Mac carry, ``.ipynb_checkpoints``) are skipped too: they are never part of a dataset.
    """
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )


def read_image(path: Path, where: str, use: Callable[[Image.Image], T]) -> T:
    """Decode ``path`` and hand the loaded image to ``use`` (inside the open file, so nothing outlives it).

    A file that does not decode is an error naming it, never a silent skip: skipping would change what is trained.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return use(image)
    except (UnidentifiedImageError, OSError) as err:
        raise OSError(
            f"{where}: cannot decode image {path} ({err}). Delete or re-encode that file; nothing was trained on it."
        ) from err


def to_tensor(image: Image.Image) -> Tensor:
    """uint8 PIL image (mode L or RGB) -> float (C, H, W) in [-1, 1], the same arithmetic as ``image_transform``."""
    array = np.array(image, dtype=np.uint8)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array)).float().div(255).sub(0.5).div(0.5)


def pixel_key(image: Tensor) -> bytes:
    """An image in [-1, 1] as its 8-bit pixels (what :func:`to_tensor` decoded it from): a lookup key that survives
    the trip to another device and back."""
    return image.float().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).numpy().tobytes()


def mode_for(channels: int) -> str:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}.")
    return "L" if channels == 1 else "RGB"


class Draw(NamedTuple):
    """One draw of the random transform, applied unchanged to every image of an item (both halves of a pair)."""

    load_size: int
    left: int
    top: int
    flip: bool


class SharedTransform:
    """The pix2pix/CycleGAN recipe with its random parameters drawn once per item (:meth:`draw`) and applied to
    any number of images (:meth:`apply`): the A and B halves of a pair get the same crop and flip.

    ``center_crop``: first cut the central square of that side (StarGAN's ``CenterCrop(178)`` of CelebA faces;
    clamped to the image). ``keep_aspect``: resize the short side to ``load_size`` and center-crop a square (the
    recipe of ``data=folder``) instead of the official square resize that ignores the aspect ratio.
    """

    def __init__(self, image_size: int, load_size: int, flip: bool, center_crop: int | None = None, keep_aspect: bool = False):
        if load_size < image_size:
            raise ValueError(
                f"data.load_size={load_size} is smaller than data.image_size={image_size}: the random crop would be "
                f"larger than the image it is cut from. Set data.load_size >= {image_size} (pix2pix/CycleGAN use "
                f"286 for 256, i.e. round(image_size * 286 / 256)) or data.load_size={image_size} for no crop."
            )
        if center_crop is not None and center_crop < 1:
            raise ValueError(f"data.center_crop must be a positive size or null, got {center_crop}.")
        self.image_size = image_size
        self.load_size = load_size
        self.flip = flip
        self.center_crop = center_crop
        self.keep_aspect = keep_aspect

    def draw(self, augment: bool) -> Draw:
        """Training (``augment``): a random crop offset in the ``load_size`` image and a coin for the flip.
        Otherwise the test-time view: resize to ``image_size``, no crop, no flip."""
        if not augment:
            return Draw(self.image_size, 0, 0, False)
        margin = self.load_size - self.image_size
        left, top = (int(v) for v in torch.randint(margin + 1, (2,))) if margin else (0, 0)
        return Draw(self.load_size, left, top, bool(self.flip and torch.rand(()) < 0.5))

    def apply(self, image: Image.Image, mode: str, draw: Draw) -> Tensor:
        image = image.convert(mode)  # grey, RGBA, palette, CMYK, 16-bit: converted, as data=folder does
        if self.center_crop is not None:
            side = min(self.center_crop, *image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side))
        image = self._resize(image, draw.load_size)
        if draw.load_size != self.image_size:
            image = image.crop((draw.left, draw.top, draw.left + self.image_size, draw.top + self.image_size))
        if draw.flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_tensor(image)

    def _resize(self, image: Image.Image, size: int) -> Image.Image:
        if not self.keep_aspect:
            return image if image.size == (size, size) else image.resize((size, size), Image.Resampling.BICUBIC)
        scale = size / min(image.size)
        width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
        if (width, height) != image.size:
            image = image.resize((width, height), Image.Resampling.BICUBIC)
        left, top = (width - size) // 2, (height - size) // 2
        return image if (width, height) == (size, size) else image.crop((left, top, left + size, top + size))

    def __repr__(self) -> str:
        return (
            f"SharedTransform(image_size={self.image_size}, load_size={self.load_size}, flip={self.flip}, "
            f"center_crop={self.center_crop}, keep_aspect={self.keep_aspect})"
        )


class TranslationItems(Dataset):
    """Base of the readers: ``dataset[i]`` is the deterministic (test-time) view of item ``i``;
    ``item(i, augment=True)`` draws the training transform."""

    transform: SharedTransform
    where: str

    def load(self, path: Path, mode: str, augment: bool) -> Tensor:
        """One image file through its own draw of the transform."""
        return read_image(path, self.where, lambda image: self.transform.apply(image, mode, self.transform.draw(augment)))

    def __getitem__(self, index: int):
        return self.item(index, augment=False)

    def item(self, index: int, augment: bool):
        raise NotImplementedError

    def source_file(self, index: int) -> Path:
        """The file the item's input (its source, or its image for domain data) is read from."""
        raise NotImplementedError


class TrainingView(Dataset):
    """The training split as the training loader sees it: every access draws a fresh random transform (and, for
    unpaired data, a random B), from torch's global RNG (seeded per DataLoader worker by torch)."""

    def __init__(self, dataset: TranslationItems):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return self.dataset.item(index, augment=True)


class NoItems(Dataset):
    """An empty held-out split (the data has none): ``conditions`` then draws from the training split."""

    def __len__(self) -> int:
        return 0

    def __getitem__(self, index: int):
        raise IndexError("this data has no held-out split")


def default_load_size(image_size: int) -> int:
    return round(image_size * OFFICIAL_LOAD_RATIO)


class TranslationDataModule(ImageDataModule):
    """Shared by the translation datamodules: the transform, the layout errors, the training view.

    ``pairing`` tells a model what it gets: ``"paired"`` (``images`` is the ground-truth translation of
    ``source``), ``"unpaired"`` (``images`` is an unrelated image of the target domain) or ``"domains"`` (no
    source; ``labels`` are the domain of ``images``).
    """

    pairing: str = ""
    #: the Hydra choice, for messages
    config_name: str = ""
    #: the layout under data.root, for messages
    expected_layout: str = ""
    #: how to get the data, for messages
    how_to_get: str = ""

    def __init__(
        self,
        root: str | Path,
        channels: int,
        image_size: int,
        num_classes: int,
        load_size: int | None = None,
        flip: bool = True,
        center_crop: int | None = None,
        keep_aspect: bool = False,
        **kwargs,
    ):
        if kwargs.get("labels_per_class") is not None:
            raise ValueError(
                f"data={self.config_name} has no semi-supervised protocol (data.labels_per_class): it is for labelled "
                "class data such as data=mnist5k. Remove data.labels_per_class."
            )
        kwargs.pop("labels_per_class", None)
        super().__init__(channels, image_size, num_classes, **kwargs)
        if root is None or str(root) in ("", "???"):
            raise ValueError(
                f"data={self.config_name} reads files: pass data.root=DIR.\nExpected under DIR:\n{self.expected_layout}"
            )
        self.root = Path(root).expanduser()
        load_size = default_load_size(image_size) if load_size is None else int(load_size)
        self.transform = SharedTransform(image_size, load_size, bool(flip), center_crop, keep_aspect)

    @property
    def where(self) -> str:
        return f"data={self.config_name}" if self.config_name else type(self).__name__

    def layout_error(self, problem: str, hint: str = "") -> MissingLayoutError:
        return MissingLayoutError(
            f"{self.where}: {problem} (data.root={self.root}).\n"
            f"Expected:\n{self.expected_layout}\n"
            f"Fix: point data.root at a folder with that layout{', ' + self.how_to_get if self.how_to_get else ''}."
            + (f"\n{hint}" if hint else "")
        )

    def require_root(self) -> None:
        if not self.root.is_dir():
            raise self.layout_error("the root folder does not exist")

    def split_files(self, name: str, required: bool = True, hint: str = "") -> list[Path] | None:
        """Images of split folder ``ROOT/name``; a missing required folder or any empty folder is an error."""
        folder = self.root / name
        if not folder.is_dir():
            if required:
                raise self.layout_error(f"no folder {name}/ in the root", hint)
            return None
        files = image_files(folder)
        if not files:
            raise self.layout_error(
                f"{folder} holds no images (searched recursively for {', '.join(IMAGE_EXTENSIONS)})",
                "An empty split folder is refused rather than skipped; remove it or fill it.",
            )
        return files

    #: whether :meth:`true_target` knows the exact translation of held-out sources (paired data; a known mapping)
    ground_truth_known: bool = False

    def true_target(self, source: Tensor) -> Tensor:
        """The ground-truth translation (N, channels, H, W) of sources ``source``, where the data knows it
        (:attr:`ground_truth_known`): metrics (L1/PSNR/SSIM) and the grids' ground-truth row read it."""
        raise ValueError(
            f"{self.where} has no ground truth for its sources ({self.pairing or 'no'} pairing): L1, PSNR and SSIM "
            "need paired data (data=paired, mnist_edges2digits, mnist_colorize) or a known mapping (mnist_thin2thick)."
        )

    def input_of(self, item: tuple) -> Tensor:
        """What a translator reads of a dataset item: its source (paired/unpaired items are ``(image, -1, source)``)."""
        if len(item) != 3:
            raise ValueError(f"{self.where}: the items of its held-out split carry no source image.")
        return item[2]

    def held_out_indices(self, source: Tensor) -> list[int]:
        """Which items of the held-out split (the one ``conditions(n, "source", seed)`` draws from) have exactly
        these sources, by their 8-bit pixels: how a metric or a grid finds the ground truth of the conditions it
        was handed, whatever seed and count drew them. The index is built on first use (one pass of test-time
        decoding over that split); the first of identical sources wins. A source that is not a held-out item is
        an error naming the split."""
        split = self._split_for("source")
        if getattr(self, "_source_index", (None,))[0] is not split:
            index: dict[bytes, int] = {}
            for i in range(len(split)):
                index.setdefault(pixel_key(self.input_of(split[i])), i)
            self._source_index = (split, index)
        index = self._source_index[1]
        keys = [pixel_key(s) for s in source.detach().cpu()]
        missing = [n for n, key in enumerate(keys) if key not in index]
        if missing:
            raise ValueError(
                f"{self.where}: {len(missing)} of {len(keys)} sources (first: #{missing[0]}) are not items of its "
                f"held-out split ({len(split)} items), so their ground truth is unknown; pass sources from "
                "datamodule.conditions(n, 'source', seed)."
            )
        return [index[key] for key in keys]

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        return self._loader(TrainingView(self.train_set), shuffle=True, drop_last=len(self.train_set) > self.batch_size)

    def val_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        return self._loader(self.val_set, shuffle=False, drop_last=False)


def first_existing(root: Path, names: Sequence[str]) -> str | None:
    return next((name for name in names if (root / name).is_dir()), None)


DIRECTIONS = ("AtoB", "BtoA")


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"data.direction must be one of {DIRECTIONS}, got {direction!r}.")
    return direction


class SourceTargetDataModule(TranslationDataModule):
    """What paired (pix2pix) and unpaired (CycleGAN) data share: no labels, a ``direction`` (AtoB|BtoA) and a
    ``source_channels`` of their own for the input side (``None``: the target side's ``channels``)."""

    #: the official code whose layout this is, for messages
    layout_name: str = ""

    def __init__(
        self,
        root: str | Path,
        direction: str = "AtoB",
        channels: int = 3,
        source_channels: int | None = None,
        image_size: int = 256,
        load_size: int | None = None,
        flip: bool = True,
        num_classes: int = 0,
        **kwargs,
    ):
        if num_classes != 0:
            raise ValueError(
                f"data={self.config_name}: the {self.layout_name} layout carries no labels; set data.num_classes=0 "
                f"(got {num_classes})."
            )
        super().__init__(root, channels, image_size, num_classes, load_size=load_size, flip=flip, **kwargs)
        self.direction = check_direction(direction)
        self.source_channels = channels if source_channels is None else source_channels
        mode_for(self.source_channels)
