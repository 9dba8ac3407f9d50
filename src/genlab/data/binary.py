"""Binarised MNIST-5k: the likelihood benchmark's data (binarised MNIST, 28x28) from the embedded 5000 digits."""

import torch
from torch.utils.data import Dataset, TensorDataset

from genlab.data.mnist5k import MNIST5kDataModule


class BinaryMNIST5kDataModule(MNIST5kDataModule):
    """MNIST-5k with every pixel thresholded at ``threshold`` (intensity in [0, 1]) to {-1, 1}.

    This is *static* binarisation by thresholding, done once, so train and held-out images are fixed and NLLs are
    reproducible. The published binarised-MNIST numbers use the Larochelle & Murray stochastic binarisation
    (fixed once) or dynamic re-binarisation per epoch; they differ by a few nats, so compare with care.
    """

    def __init__(self, channels: int = 1, image_size: int = 28, num_classes: int = 10, threshold: float = 0.5, **kwargs):
        super().__init__(channels, image_size, num_classes, **kwargs)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"data.threshold must be in (0, 1), got {threshold}.")
        self.threshold = threshold

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        train, val = super().build_datasets()
        return self._binarise(train), self._binarise(val)

    def _binarise(self, subset) -> Dataset:
        images, labels = subset.dataset.tensors
        index = torch.as_tensor(subset.indices)
        binary = torch.where((images[index] + 1) / 2 > self.threshold, 1.0, -1.0)
        return TensorDataset(binary, labels[index])
