"""Unpaired translation data in the CycleGAN layout: two folders of unrelated images, A and B.

junyanz/pytorch-CycleGAN-and-pix2pix ``data/unaligned_dataset.py``: an epoch has ``max(|A|, |B|)`` items; item
``i`` is A image ``i % |A|`` and a B image drawn at random (``--serial_batches``: B image ``i % |B|``); A and B get
independent random transforms.

How an unpaired item maps onto the Batch contract: ``source`` is the A image (the input of the translation) and
``images`` is a B image that has nothing to do with it, a sample of the target domain (what the model should
produce, in distribution). The datamodule says so with ``pairing = "unpaired"``: a model must never treat
``images`` as the translation of ``source`` (pix2pix's L1 term would be meaningless here). ``labels`` is ``None``.
"""

import warnings
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from genlab.data.translation.images import NoItems, SharedTransform, SourceTargetDataModule, TranslationItems, mode_for

UNPAIRED_LAYOUT = (
    "  ROOT/trainA/*.jpg  domain A (the sources), any count\n"
    "  ROOT/trainB/*.jpg  domain B (the targets), any count\n"
    "  ROOT/testA/, ROOT/testB/  held out (optional; without testB the held-out A images meet trainB images)"
)
UNPAIRED_SOURCE = (
    "e.g. a CycleGAN dataset (horse2zebra, monet2photo, apple2orange, summer2winter_yosemite, vangogh2photo, ...) "
    "from junyanz/pytorch-CycleGAN-and-pix2pix: bash ./datasets/download_cyclegan_dataset.sh horse2zebra, then "
    "data.root=./datasets/horse2zebra"
)


class UnpairedImages(TranslationItems):
    """Folders A and B -> ``(B image, -1, A image)``. Training draws (``item(i, augment=True)``) take a random B
    unless ``serial``; the deterministic view (``dataset[i]``) always takes B ``i % |B|``.

    ``length``: ``None`` is the official ``max(|A|, |B|)``; held-out splits use ``|A|`` so every held-out source
    is drawn equally often by seeded conditions.
    """

    def __init__(
        self,
        files_a: list[Path],
        files_b: list[Path],
        transform: SharedTransform,
        source_channels: int,
        channels: int,
        serial: bool,
        where: str,
        length: int | None = None,
    ):
        self.files_a = files_a
        self.files_b = files_b
        self.transform = transform
        self.source_mode = mode_for(source_channels)
        self.target_mode = mode_for(channels)
        self.serial = serial
        self.where = where
        self.length = max(len(files_a), len(files_b)) if length is None else length

    def __len__(self) -> int:
        return self.length

    def source_file(self, index: int) -> Path:
        return self.files_a[index % len(self.files_a)]

    def target_index(self, index: int, augment: bool) -> int:
        if augment and not self.serial:
            return int(torch.randint(len(self.files_b), ()))
        return index % len(self.files_b)

    def item(self, index: int, augment: bool) -> tuple[Tensor, int, Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        path_b = self.files_b[self.target_index(index, augment)]
        source = self.load(self.source_file(index), self.source_mode, augment)  # A and B: independent draws
        target = self.load(path_b, self.target_mode, augment)
        return target, -1, source


class UnpairedDataModule(SourceTargetDataModule):
    """CycleGAN data: ``Batch(images=a B image, labels=None, source=an unrelated A image)`` (see the module notes).

    ``channels``: of B (``images``); ``source_channels``: of A. ``direction=BtoA`` swaps the folders' roles.
    ``serial``: B image ``i % |B|`` instead of a random one (CycleGAN's ``--serial_batches``).
    """

    pairing = "unpaired"
    config_name = "unpaired"
    expected_layout = UNPAIRED_LAYOUT
    how_to_get = UNPAIRED_SOURCE
    layout_name = "CycleGAN"

    def __init__(self, root: str | Path, serial: bool = False, **kwargs):
        super().__init__(root, **kwargs)
        self.serial = bool(serial)

    def reader(self, files_a: list[Path], files_b: list[Path], length: int | None = None) -> UnpairedImages:
        return UnpairedImages(
            files_a, files_b, self.transform, self.source_channels, self.channels, self.serial, self.where, length
        )

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        self.require_root()
        a, b = ("A", "B") if self.direction == "AtoB" else ("B", "A")
        paired_hint = (
            "This root has train/ but no trainA/: that is the paired (pix2pix) layout; use data=paired."
            if (self.root / "train").is_dir() and not (self.root / "trainA").is_dir()
            else ""
        )
        train_a = self.split_files(f"train{a}", hint=paired_hint)
        train_b = self.split_files(f"train{b}", hint=paired_hint)
        test_a = self.split_files(f"test{a}", required=False)
        test_b = self.split_files(f"test{b}", required=False)
        if test_a is None:
            warnings.warn(
                f"{self.where}: {self.root} has no test{a}/ folder; held-out sources for grids and metrics come from "
                f"train{a}/.",
                stacklevel=2,
            )
            return self.reader(train_a, train_b), NoItems()
        # held out: each test source once; its (unrelated) target from testB, or trainB where there is no testB
        return self.reader(train_a, train_b), self.reader(test_a, test_b or train_b, length=len(test_a))
