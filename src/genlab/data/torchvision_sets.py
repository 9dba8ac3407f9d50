"""MNIST, Fashion-MNIST, CIFAR-10 and CelebA through ``torchvision.datasets``, in their official on-disk formats.

torchvision downloads when ``data.download=true`` (and the machine has internet); otherwise a missing or incomplete
root raises one error that names the files expected and the two ways to fix it.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import datasets

from genlab.data.base import ImageDataModule


class MissingDatasetError(FileNotFoundError):
    pass


class TorchvisionDataModule(ImageDataModule):
    """A torchvision dataset with an official train split (training) and a held-out split (validation)."""

    #: human-readable layout under ``root`` that torchvision expects, for error messages
    expected_layout: str = ""
    #: the Hydra choice that selects this datamodule, for error messages
    config_name: str = ""

    def __init__(self, root: str | Path, channels: int, image_size: int, num_classes: int, download: bool = False, **kwargs):
        super().__init__(channels, image_size, num_classes, **kwargs)
        self.root = Path(root).expanduser()
        self.download = download

    def make_dataset(self, train: bool, download: bool = False) -> Dataset:
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Download once (Lightning calls this on one process only); ``setup`` then only reads."""
        if self.download:
            self.make_dataset(train=True, download=True)
            self.make_dataset(train=False, download=True)

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        try:
            return self.make_dataset(train=True), self.make_dataset(train=False)
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted. You can use download=True ..."
            if "not found" not in str(err).lower():
                raise
            raise MissingDatasetError(
                f"data={self.config_name}: no dataset found under data.root={self.root}.\n"
                f"Expected:\n{self.expected_layout}\n"
                f"Fix: pass data.root=DIR pointing at a folder with that layout, or add data.download=true to "
                f"download it there (needs internet)."
            ) from err


@dataclass
class AttributeTable:
    """CelebA's binary attributes for the items of one split, in item order: ``names`` as in
    ``list_attr_celeba.txt`` (40 of them: Smiling, Male, Eyeglasses, ...), ``values`` (N, len(names)) bool."""

    names: list[str]
    values: Tensor

    def matching(self, terms: list[str]) -> Tensor:
        """Item mask (N,) of the items that have every attribute in ``terms`` and lack every ``-Name`` one:
        ``["Smiling", "-Male"]`` are the smiling women. Names match case-insensitively."""
        if not terms:
            raise ValueError(f"a concept needs at least one attribute; choose from {self.names} (prefix - for 'without').")
        lookup = {name.lower(): i for i, name in enumerate(self.names)}
        mask = torch.ones(len(self.values), dtype=torch.bool)
        for term in terms:
            wanted = not term.startswith("-")
            column = lookup.get(term.lstrip("+-").lower())
            if column is None:
                raise ValueError(
                    f"{term!r} is not a CelebA attribute; choose from {self.names} (prefix - for 'without', "
                    "e.g. [Smiling,-Male] for smiling women)."
                )
            mask &= self.values[:, column] == wanted
        return mask


class _TargetAsLabel:
    """CelebA has attribute targets, not classes: the data contract's label is -1."""

    def __call__(self, target) -> int:
        return -1


class MNISTDataModule(TorchvisionDataModule):
    config_name = "mnist"
    dataset_class = datasets.MNIST
    expected_layout = (
        "  ROOT/MNIST/raw/train-images-idx3-ubyte\n  ROOT/MNIST/raw/train-labels-idx1-ubyte\n"
        "  ROOT/MNIST/raw/t10k-images-idx3-ubyte\n  ROOT/MNIST/raw/t10k-labels-idx1-ubyte"
    )

    def __init__(self, root: str | Path, channels: int = 1, image_size: int = 32, num_classes: int = 10, **kwargs):
        super().__init__(root, channels, image_size, num_classes, **kwargs)

    def make_dataset(self, train: bool, download: bool = False) -> Dataset:
        return self.dataset_class(self.root, train=train, transform=self.image_transform(), download=download)


class FashionMNISTDataModule(MNISTDataModule):
    config_name = "fashion_mnist"
    dataset_class = datasets.FashionMNIST
    expected_layout = MNISTDataModule.expected_layout.replace("MNIST/", "FashionMNIST/")


class CIFAR10DataModule(MNISTDataModule):
    config_name = "cifar10"
    dataset_class = datasets.CIFAR10
    expected_layout = (
        "  ROOT/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, batches.meta (python pickles)"
    )

    def __init__(self, root: str | Path, channels: int = 3, image_size: int = 32, num_classes: int = 10, **kwargs):
        super().__init__(root, channels, image_size, num_classes, **kwargs)


class CelebADataModule(TorchvisionDataModule):
    """Aligned CelebA faces: official 'train' split for training, 'valid' for validation, labels -1.

    Images are resized on the short side and center-cropped to ``image_size``, the recipe of the PyTorch DCGAN
    example used for 64x64 faces. ``data.root`` may be the folder that holds ``celeba/`` or ``celeba/`` itself.
    """

    config_name = "celeba"
    expected_layout = (
        "  ROOT/celeba/img_align_celeba/000001.jpg ...\n"
        "  ROOT/celeba/list_eval_partition.txt, identity_CelebA.txt, list_attr_celeba.txt,\n"
        "  ROOT/celeba/list_bbox_celeba.txt, list_landmarks_align_celeba.txt"
    )

    def __init__(self, root: str | Path, channels: int = 3, image_size: int = 64, num_classes: int = 0, **kwargs):
        super().__init__(root, channels, image_size, num_classes, **kwargs)
        if self.root.name == "celeba" and (self.root / "img_align_celeba").is_dir():
            self.root = self.root.parent

    def attribute_table(self, train: bool = True) -> AttributeTable:
        """The 40 attributes of ``list_attr_celeba.txt`` (read by torchvision, -1/1 as False/True) for the items of
        the training split (``train=False``: the validation split), in item order. Attributes are not labels of the
        data contract (``num_classes`` stays 0, batches carry none): they are asked for by tools that pick images by
        attribute, such as ``eval.py mode=arithmetic``."""
        if self.train_set is None:
            self.setup("fit")
        dataset = self.train_set if train else self.val_set
        # the official header line ends with a space, which torchvision's reader keeps as an empty last name
        names = [name for name in dataset.attr_names if name]
        return AttributeTable(names, dataset.attr[:, : len(names)].bool())

    def make_dataset(self, train: bool, download: bool = False) -> Dataset:
        return datasets.CelebA(
            self.root,
            split="train" if train else "valid",
            target_type="identity",
            transform=self.image_transform(),
            target_transform=_TargetAsLabel(),
            download=download,
        )
