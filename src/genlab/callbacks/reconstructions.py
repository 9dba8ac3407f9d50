"""Grids for models with an encoder: reconstructions (any model with ``reconstruct(images, labels)``) and latent
traversals (any model with ``decode(z, labels)`` and ``latent_dim``)."""

from pathlib import Path

import pytorch_lightning as pl
import torch

from genlab.callbacks.periodic import PeriodicCallback, logged_step
from genlab.evaluation import held_out_batch
from genlab.images import image_grid, log_image, save_png


class ReconstructionGrid(PeriodicCallback):
    """Fixed held-out images and their reconstructions in alternating rows of ``nrow``: ``dirpath/epoch_XXX.png``,
    logged as ``reconstructions/grid``."""

    capability = "reconstruct(images, labels)"

    def __init__(self, dirpath: str | Path, every_n_epochs: int = 1, num_images: int = 32, nrow: int = 8):
        super().__init__(every_n_epochs=every_n_epochs)
        self.dirpath, self.num_images, self.nrow = Path(dirpath), num_images, nrow
        self.last_path: Path | None = None

    def supports(self, pl_module: pl.LightningModule) -> bool:
        return callable(getattr(pl_module, "reconstruct", None))

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        batch = held_out_batch(trainer.datamodule, self.num_images).to(pl_module.device)
        images = batch.images
        recon = pl_module.reconstruct(images, batch.labels).to(images.device)
        rows = []
        for start in range(0, len(images), self.nrow):
            rows += [images[start : start + self.nrow], recon[start : start + self.nrow]]
        grid = image_grid(torch.cat(rows), nrow=self.nrow)
        self.last_path = save_png(grid, self.dirpath / f"epoch_{trainer.current_epoch:03d}.png")
        log_image(trainer.loggers, "reconstructions/grid", grid, step=logged_step(trainer), caption="rows: originals, reconstructions")


def traversal_codes(latent_dim: int, dims: tuple[int, int], span: float, steps: int) -> torch.Tensor:
    """(steps * steps, latent_dim) codes: ``dims[0]`` varies down the rows, ``dims[1]`` across the columns, each
    over [-span, span]; every other dimension stays at the prior mean 0."""
    values = torch.linspace(-span, span, steps)
    z = torch.zeros(steps, steps, latent_dim)
    z[:, :, dims[0]] = values[:, None]
    z[:, :, dims[1]] = values[None, :]
    return z.view(steps * steps, latent_dim)


class LatentTraversal(PeriodicCallback):
    """Seed 000's "pick two dimensions, fix the rest": decode a ``steps x steps`` grid over two latent dimensions
    (``traversal/grid``). For a class-conditional model (``num_classes > 0``): for each of the two dimensions, one
    row per class walking that dimension (``traversal/dim_<d>``)."""

    capability = "decode(z, labels) and latent_dim"

    def __init__(self, dirpath: str | Path, dims: tuple[int, int] = (0, 1), span: float = 3.0, steps: int = 9, every_n_epochs: int = 1):
        super().__init__(every_n_epochs=every_n_epochs)
        if len(dims) != 2 or dims[0] == dims[1]:
            raise ValueError(f"callbacks.latent_traversal.dims must be two different latent dimensions, got {list(dims)}.")
        self.dirpath, self.dims, self.span, self.steps = Path(dirpath), tuple(dims), span, steps
        self.last_paths: list[Path] = []

    def supports(self, pl_module: pl.LightningModule) -> bool:
        return callable(getattr(pl_module, "decode", None)) and isinstance(getattr(pl_module, "latent_dim", None), int)

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if max(self.dims) >= pl_module.latent_dim:
            raise ValueError(f"callbacks.latent_traversal.dims={list(self.dims)} but the model has latent_dim={pl_module.latent_dim}.")
        grids = {}
        num_classes = int(getattr(pl_module, "num_classes", 0) or 0)
        was_training = pl_module.training
        pl_module.eval()
        try:
            if num_classes:
                values = torch.linspace(-self.span, self.span, self.steps)
                for d in self.dims:
                    z = torch.zeros(num_classes, self.steps, pl_module.latent_dim)
                    z[:, :, d] = values
                    labels = torch.arange(num_classes).repeat_interleave(self.steps)
                    images = pl_module.decode(z.view(-1, pl_module.latent_dim).to(pl_module.device), labels.to(pl_module.device))
                    grids[f"dim_{d}"] = image_grid(images, nrow=self.steps)
            else:
                z = traversal_codes(pl_module.latent_dim, self.dims, self.span, self.steps).to(pl_module.device)
                grids["grid"] = image_grid(pl_module.decode(z), nrow=self.steps)
        finally:
            pl_module.train(was_training)
        self.last_paths = []
        for name, grid in grids.items():
            self.last_paths.append(save_png(grid, self.dirpath / f"{name}_epoch_{trainer.current_epoch:03d}.png"))
            log_image(trainer.loggers, f"traversal/{name}", grid, step=logged_step(trainer))
