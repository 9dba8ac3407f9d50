"""2-D Gaussian mixtures for mode-collapse experiments: the ring and the grid of VEEGAN (Srivastava et al. 2017)
and PacGAN (Lin et al. 2018).

Point datamodules yield a ``Batch(images=points (N, dim) float32, labels=index of the mixture component)`` and expose
``dim`` (what point models read, as image models read ``channels``/``image_size``), ``num_classes`` (= modes),
``centers`` (modes, dim) and ``std``, which the mode-coverage metric and the scatter plots use.
"""

import math

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from genlab.data.batch import CollateBatch, ConditionSource
from genlab.data.resumable import ResumableShuffle


class GaussianMixtureDataModule(ResumableShuffle, ConditionSource, pl.LightningDataModule):
    """``num_points`` draws (fixed by ``seed``) from an equal-weight mixture of isotropic Gaussians.

    PacGAN trains on 100k points in batches of 100; those are the defaults.
    """

    def __init__(
        self,
        centers: torch.Tensor,
        std: float,
        num_points: int = 100_000,
        batch_size: int = 100,
        seed: int = 0,
        num_workers: int = 0,
    ):
        super().__init__()
        if std <= 0:
            raise ValueError(f"data.std must be positive, got {std}.")
        self.centers = torch.as_tensor(centers, dtype=torch.float32)
        self.std = float(std)
        self.dim = self.centers.shape[1]
        self.num_classes = self.centers.shape[0]
        self.num_points = num_points
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.train_set: TensorDataset | None = None
        self.val_set = None  # fresh draws are the held-out data of a mixture

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = TensorDataset(*self.draw(self.num_points, torch.Generator().manual_seed(self.seed)))

    def draw(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` points and the index of the component each came from."""
        labels = torch.randint(self.num_classes, (n,), generator=generator)
        points = self.centers[labels] + self.std * torch.randn(n, self.dim, generator=generator)
        return points, labels

    def train_dataloader(self) -> DataLoader:
        # Whole shuffled batches are indexed at once (no per-point fetch and collate), which matters when a training
        # step on 2-D points costs about as much as loading it. drop_last: BatchNorm in G and the per-batch GAN
        # losses want equal batch sizes. Resumable mid-epoch (genlab.data.resumable).
        return self.resumable_loader(
            self.train_set,
            self.batch_size,
            drop_last=True,
            whole_batches=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=CollateBatch(labelled=True, batched=True),
        )


def _check_dim(dim: int, name: str) -> None:
    if dim != 2:
        raise ValueError(f"data={name} is a 2-D mixture; data.dim is there for models to read and must be 2, got {dim}.")


class RingDataModule(GaussianMixtureDataModule):
    """``num_modes`` Gaussians evenly spaced on a circle of ``radius`` (angles 2 pi k / num_modes, k < num_modes:
    endpoint excluded, so no two modes coincide as in ``np.linspace(0, 2 pi, 8)``)."""

    def __init__(self, num_modes: int = 8, radius: float = 1.0, std: float = 0.01, dim: int = 2, **kwargs):
        _check_dim(dim, f"ring{num_modes}")
        angles = 2 * math.pi * torch.arange(num_modes, dtype=torch.float64) / num_modes
        centers = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
        super().__init__(centers, std, **kwargs)


class GridDataModule(GaussianMixtureDataModule):
    """``side`` x ``side`` Gaussians on a square grid with ``spacing`` between modes, centred on the origin
    (side 5, spacing 2: modes at {-4, -2, 0, 2, 4}^2)."""

    def __init__(self, side: int = 5, spacing: float = 2.0, std: float = 0.05, dim: int = 2, **kwargs):
        _check_dim(dim, f"grid{side * side}")
        ticks = spacing * (torch.arange(side, dtype=torch.float64) - (side - 1) / 2)
        centers = torch.cartesian_prod(ticks, ticks)
        super().__init__(centers, std, **kwargs)
