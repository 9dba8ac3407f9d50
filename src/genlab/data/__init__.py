"""LightningDataModules. Every datamodule yields a :class:`~genlab.data.batch.Batch` (``images``: what the model
should produce, float in [-1, 1], NCHW; ``labels``: int64 class ids, ``None`` where a dataset has none; ``source``:
the input of a translation) and hands out seeded conditions (``conditions(n, conditioning, seed)``). Image
datamodules expose ``channels``, ``image_size`` and ``num_classes``; point datamodules (``toy.py``) yield points
(N, dim) as ``images`` with their mode index as ``labels`` and expose ``dim``, ``num_classes``, ``centers``, ``std``."""

from genlab.data.base import ImageDataModule
from genlab.data.batch import Batch, conditions_for
from genlab.data.binary import BinaryMNIST5kDataModule
from genlab.data.folder import ImageFolderDataModule
from genlab.data.mnist5k import MNIST5kDataModule
from genlab.data.palette import PaletteQuantizedDataModule, PokemonDataModule
from genlab.data.torchvision_sets import CelebADataModule, CIFAR10DataModule, FashionMNISTDataModule, MNISTDataModule
from genlab.data.toy import GaussianMixtureDataModule, GridDataModule, RingDataModule
from genlab.data.translation import (
    CelebADomainsDataModule,
    DomainFolderDataModule,
    MNISTColorizeDataModule,
    MNISTDomainsDataModule,
    MNISTEdges2DigitsDataModule,
    MNISTThin2ThickDataModule,
    PairedDataModule,
    UnpairedDataModule,
)

__all__ = [
    "Batch",
    "BinaryMNIST5kDataModule",
    "CelebADataModule",
    "CelebADomainsDataModule",
    "CIFAR10DataModule",
    "DomainFolderDataModule",
    "FashionMNISTDataModule",
    "GaussianMixtureDataModule",
    "GridDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "MNIST5kDataModule",
    "MNISTColorizeDataModule",
    "MNISTDataModule",
    "MNISTDomainsDataModule",
    "MNISTEdges2DigitsDataModule",
    "MNISTThin2ThickDataModule",
    "PairedDataModule",
    "PaletteQuantizedDataModule",
    "PokemonDataModule",
    "RingDataModule",
    "UnpairedDataModule",
    "conditions_for",
]
