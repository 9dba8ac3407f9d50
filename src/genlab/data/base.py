"""Shared datamodule plumbing: loaders that yield :class:`~genlab.data.batch.Batch`, the deterministic train/val
split and the image transform."""

import pytorch_lightning as pl
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from genlab.data.batch import ConditionSource
from genlab.data.labelled import SemiSupervisedBatches, SemiSupervisedItems, item_labels, labelled_subset
from genlab.data.resumable import ResumableLoader, ResumableShuffle


class ImageDataModule(ResumableShuffle, ConditionSource, pl.LightningDataModule):
    """Base for image datamodules. Subclasses implement :meth:`build_datasets`.

    ``channels`` and ``image_size`` are what the model sees: every dataset is converted (grayscale <-> RGB) and
    resized + center-cropped to them, so MNIST can feed a 3-channel 64px DCGAN and CIFAR-10 a grayscale one.

    ``labels_per_class``: keep the labels of that many seeded training items per class and mark the rest -1, with
    the labelled items in every training batch (the semi-supervised protocol, :mod:`genlab.data.labelled`; the
    ``ssgan`` preset sets 10). ``None``: every item keeps its label.

    The training loader resumes mid-epoch exactly (:mod:`genlab.data.resumable`).
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        num_classes: int,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        labels_per_class: int | None = None,
    ):
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"data.channels must be 1 (grayscale) or 3 (RGB), got {channels}.")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}.")
        if labels_per_class is not None and (num_classes < 2 or labels_per_class < 1):
            raise ValueError(
                f"data.labels_per_class={labels_per_class} keeps the labels of that many training items per class, "
                f"which needs labelled data (data.num_classes >= 2, here {num_classes}) and a positive count; "
                f"{type(self).__name__} cannot provide it. Pick labelled data (data=mnist5k, mnist, cifar10) for "
                "model=ssgan, or set data.labels_per_class=null."
            )
        self.channels = channels
        self.image_size = image_size
        self.num_classes = num_classes
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.labels_per_class = labels_per_class
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.labelled_indices: Tensor | None = None  # the labelled subset of train_set, with labels_per_class

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        """Return (train, val) datasets of ``(image tensor in [-1, 1], int label)`` items (``-1`` where the data
        has no labels; :meth:`collate` turns them into a Batch with ``labels=None``)."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.val_set = self.build_datasets()
            if self.labels_per_class is not None:
                self.labelled_indices = labelled_subset(
                    item_labels(self.train_set), self.labels_per_class, self.num_classes, self.split_seed, type(self).__name__
                )

    def train_dataloader(self) -> DataLoader:
        if self.labelled_indices is not None:
            seed = self.run_shuffle_seed()
            batches = SemiSupervisedBatches(len(self.train_set), len(self.labelled_indices), self.batch_size, seed)
            return ResumableLoader(
                SemiSupervisedItems(self.train_set, self.labelled_indices),
                batches,
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
                persistent_workers=self.num_workers > 0,
                collate_fn=self.collate,
            )
        # drop_last: a tiny last batch gives BatchNorm in G/D noisy statistics and the GAN step a different scale.
        return self._loader(self.train_set, shuffle=True, drop_last=len(self.train_set) > self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False, drop_last=False)

    def _loader(self, dataset: Dataset, shuffle: bool, drop_last: bool) -> DataLoader:
        """A loader of ``dataset``; a shuffled one (training) resumes mid-epoch exactly (:mod:`genlab.data.resumable`)."""
        options = dict(
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            collate_fn=self.collate,
        )
        if shuffle:
            return self.resumable_loader(dataset, self.batch_size, drop_last=drop_last, **options)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=False, drop_last=drop_last, **options)

    def image_transform(self) -> v2.Compose:
        """PIL image -> float tensor in [-1, 1] with ``channels`` channels, resized and center-cropped."""
        return v2.Compose(
            [
                ConvertMode("L" if self.channels == 1 else "RGB"),
                v2.PILToTensor(),
                v2.Resize(self.image_size, antialias=True),
                v2.CenterCrop(self.image_size),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize([0.5] * self.channels, [0.5] * self.channels),
            ]
        )

    def random_split(self, dataset: Dataset) -> tuple[Subset, Subset]:
        """Seeded split, so the validation images are the same in every run and every job of a sweep."""
        n_val = int(round(len(dataset) * self.val_fraction))
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        return Subset(dataset, order[n_val:]), Subset(dataset, order[:n_val])


class ConvertMode:
    """Picklable ``PIL.Image.convert`` step (lambdas break DataLoader workers under spawn)."""

    def __init__(self, mode: str):
        self.mode = mode

    def __call__(self, image: Image.Image) -> Image.Image:
        return image.convert(self.mode)

    def __repr__(self) -> str:
        return f"ConvertMode({self.mode!r})"
