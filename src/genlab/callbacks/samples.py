"""Sample grids from a fixed noise batch during training, as PNGs, logger images and a closing GIF."""

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from genlab.images import image_grid, log_image, save_gif, save_png


class SampleGrid(pl.Callback):
    """Every ``every_n_steps`` training batches and/or every ``every_n_epochs`` epochs (and at the end), draw
    ``num_samples`` with the same seed.

    Re-seeding a ``torch.Generator`` each time gives the same noise every time without storing it, so the grids
    show one fixed set of latents evolving. Writes ``dirpath/step_000123.png``, logs ``samples/grid`` and, at the end
    of training, ``dirpath/progress.gif`` of all grids.
    """

    def __init__(
        self,
        dirpath: str | Path,
        every_n_steps: int | None = 200,
        every_n_epochs: int | None = None,
        num_samples: int = 64,
        nrow: int = 8,
        seed: int = 0,
    ):
        for name, value in (("every_n_steps", every_n_steps), ("every_n_epochs", every_n_epochs)):
            if value is not None and value < 1:
                raise ValueError(f"callbacks.sample_grid.{name} must be a positive integer or null, got {value}.")
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.every_n_epochs = every_n_epochs
        self.num_samples = num_samples
        self.nrow = nrow
        self.seed = seed
        self.frames: list[np.ndarray] = []
        self.last_path: Path | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        step = batches_seen(trainer)
        if self.every_n_steps and step % self.every_n_steps == 0:
            self.render(trainer, pl_module, step)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = batches_seen(trainer)
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0 and self.last_path != self.png_path(step):
            self.render(trainer, pl_module, step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = batches_seen(trainer)
        if self.last_path is None or self.last_path != self.png_path(step):
            self.render(trainer, pl_module, step)
        if trainer.is_global_zero and len(self.frames) > 1:
            save_gif(self.frames, self.dirpath / "progress.gif")

    def png_path(self, step: int) -> Path:
        return self.dirpath / f"step_{step:06d}.png"

    @torch.no_grad()
    def render(self, trainer: pl.Trainer, pl_module: pl.LightningModule, step: int) -> None:
        if not trainer.is_global_zero:
            return
        samples = pl_module.sample(self.num_samples, generator=torch.Generator().manual_seed(self.seed))
        grid = image_grid(samples, nrow=self.nrow)
        self.frames.append(grid)
        self.last_path = save_png(grid, self.png_path(step))
        log_image(trainer.loggers, "samples/grid", grid, step=trainer.global_step, caption=f"step {step}")


def batches_seen(trainer: pl.Trainer) -> int:
    """Training batches processed so far. Under manual optimization ``global_step`` counts optimizer steps (two or
    more per GAN batch), so batches are the unit a user can reason about."""
    return trainer.fit_loop.epoch_loop.total_batch_idx + 1
