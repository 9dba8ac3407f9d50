"""LightningDataModules. Image datamodules yield ``(images, labels)``: float images in [-1, 1], NCHW, int64 labels
(-1 where a dataset has none), and expose ``channels``, ``image_size`` and ``num_classes``."""

from genlab.data.base import ImageDataModule
from genlab.data.binary import BinaryMNIST5kDataModule
from genlab.data.folder import ImageFolderDataModule
from genlab.data.mnist5k import MNIST5kDataModule
from genlab.data.palette import PaletteQuantizedDataModule, PokemonDataModule
from genlab.data.torchvision_sets import CelebADataModule, CIFAR10DataModule, FashionMNISTDataModule, MNISTDataModule

__all__ = [
    "BinaryMNIST5kDataModule",
    "CelebADataModule",
    "CIFAR10DataModule",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "MNIST5kDataModule",
    "MNISTDataModule",
    "PaletteQuantizedDataModule",
    "PokemonDataModule",
]
