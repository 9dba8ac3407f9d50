"""LightningDataModules. Image datamodules yield ``(images, labels)``: float images in [-1, 1], NCHW, int64 labels
(-1 where a dataset has none), and expose ``channels``, ``image_size`` and ``num_classes``. Point datamodules
(``toy.py``) yield ``(points (N, dim), mode labels)`` and expose ``dim``, ``num_classes``, ``centers``, ``std``."""

from genlab.data.base import ImageDataModule
from genlab.data.binary import BinaryMNIST5kDataModule
from genlab.data.folder import ImageFolderDataModule
from genlab.data.mnist5k import MNIST5kDataModule
from genlab.data.palette import PaletteQuantizedDataModule, PokemonDataModule
from genlab.data.torchvision_sets import CelebADataModule, CIFAR10DataModule, FashionMNISTDataModule, MNISTDataModule
from genlab.data.toy import GaussianMixtureDataModule, GridDataModule, RingDataModule

__all__ = [
    "BinaryMNIST5kDataModule",
    "CelebADataModule",
    "CIFAR10DataModule",
    "FashionMNISTDataModule",
    "GaussianMixtureDataModule",
    "GridDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "MNIST5kDataModule",
    "MNISTDataModule",
    "PaletteQuantizedDataModule",
    "PokemonDataModule",
    "RingDataModule",
]
