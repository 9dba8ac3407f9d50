"""Paired translation data in the pix2pix layout: one file per pair, A on the left, B on the right.

junyanz/pytorch-CycleGAN-and-pix2pix ``data/aligned_dataset.py``: split the AB image at ``w/2``, draw one transform
(resize to ``load_size``, random ``crop_size`` crop, flip) and apply it to both halves, so the pixels of A and B
stay in correspondence. ``direction=BtoA`` swaps the halves (facades trains labels -> photos with BtoA).
"""

import warnings
from pathlib import Path

from torch import Tensor
from torch.utils.data import Dataset

from genlab.data.translation.images import (
    NoItems,
    SharedTransform,
    SourceTargetDataModule,
    TranslationItems,
    check_direction,
    first_existing,
    mode_for,
    read_image,
)

PAIRED_LAYOUT = (
    "  ROOT/train/*.jpg   one file per pair: A the left half, B the right half, side by side (even width)\n"
    "  ROOT/val/*.jpg     held out, same format (optional; ROOT/test is used where there is no val/)"
)
PAIRED_SOURCE = (
    "e.g. a pix2pix dataset (facades, maps, edges2shoes, edges2handbags, night2day) from "
    "junyanz/pytorch-CycleGAN-and-pix2pix: bash ./datasets/download_pix2pix_dataset.sh facades, then "
    "data.root=./datasets/facades; your own A/ and B/ folders of equal names: python datasets/combine_A_and_B.py "
    "--fold_A A --fold_B B --fold_AB AB (same repo)"
)


class PairedImages(TranslationItems):
    """AB files -> ``(target, -1, source)``: target = B and source = A for ``AtoB``, the other way for ``BtoA``."""

    def __init__(
        self, files: list[Path], transform: SharedTransform, direction: str, source_channels: int, channels: int, where: str
    ):
        self.files = files
        self.transform = transform
        self.direction = check_direction(direction)
        self.source_mode = mode_for(source_channels)
        self.target_mode = mode_for(channels)
        self.where = where

    def __len__(self) -> int:
        return len(self.files)

    def source_file(self, index: int) -> Path:
        return self.files[index]

    def item(self, index: int, augment: bool) -> tuple[Tensor, int, Tensor]:
        path = self.files[index]
        draw = self.transform.draw(augment)

        def split(image):
            width, height = image.size
            if width % 2:
                raise ValueError(
                    f"{self.where}: {path} is {width}x{height}, an odd width, so its A and B halves would differ in "
                    "width. A pix2pix file is A and B of equal size side by side (A left, B right); re-create it "
                    "with combine_A_and_B.py from the A/ and B/ images, or crop one pixel column."
                )
            half = width // 2
            a, b = image.crop((0, 0, half, height)), image.crop((half, 0, width, height))
            source, target = (a, b) if self.direction == "AtoB" else (b, a)
            return self.transform.apply(target, self.target_mode, draw), self.transform.apply(source, self.source_mode, draw)

        target, source = read_image(path, self.where, split)
        return target, -1, source


class PairedDataModule(SourceTargetDataModule):
    """pix2pix data: ``Batch(images=target half, labels=None, source=input half)``.

    ``channels`` are those of the target side (``images``, what the model produces), ``source_channels`` those
    of the input side; each half is converted to its own mode (``data=mnist_colorize``: grey in, RGB out).
    ``load_size``: ``None`` is the official ratio, ``round(image_size * 286 / 256)``; ``image_size`` turns the
    random crop off. Training split ``ROOT/train``; held out ``ROOT/val``, else ``ROOT/test``, else none (then
    seeded conditions come from the training split, with a warning).
    """

    pairing = "paired"
    config_name = "paired"
    expected_layout = PAIRED_LAYOUT
    how_to_get = PAIRED_SOURCE
    layout_name = "pix2pix"

    ground_truth_known = True

    def true_target(self, source: Tensor) -> Tensor:
        """The target halves of the held-out pairs whose source halves ``source`` are (:meth:`held_out_indices`),
        at the test-time view (no crop, no flip): the ground truth that L1/PSNR/SSIM and the grids compare with."""
        memo = getattr(self, "_last_true_target", None)
        if memo is not None and memo[0] is source:  # the same sources, asked by L1, PSNR and SSIM in turn: decode once
            return memo[1]
        split = self._split_for("source")
        target = self.batch_of(split, self.held_out_indices(source)).images.to(source.device)
        self._last_true_target = (source, target)
        return target

    def reader(self, files: list[Path]) -> PairedImages:
        return PairedImages(files, self.transform, self.direction, self.source_channels, self.channels, self.where)

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        self.require_root()
        unpaired_hint = (
            "This root has trainA/ and trainB/: that is the unpaired (CycleGAN) layout; use data=unpaired."
            if (self.root / "trainA").is_dir()
            else ""
        )
        train = self.split_files("train", hint=unpaired_hint)
        held_out = first_existing(self.root, ("val", "test"))
        if held_out is None:
            warnings.warn(
                f"{self.where}: {self.root} has no val/ or test/ folder; held-out sources for grids and metrics come "
                "from the training split.",
                stacklevel=2,
            )
            return self.reader(train), NoItems()
        return self.reader(train), self.reader(self.split_files(held_out))
