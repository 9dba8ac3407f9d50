"""Sample grids from a fixed noise batch during training, as PNGs, logger images and a closing GIF.

Images (N, C, H, W) become an image grid; points (N, 2) become a scatter plot. The choice follows the shape of
what ``sample()`` returns, never the type of the model.
"""

import io
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from genlab.images import image_grid, log_image, save_gif, save_png


class SampleGrid(pl.Callback):
    """Every ``every_n_steps`` training batches and/or every ``every_n_epochs`` epochs (and at the end), draw
    ``num_samples`` with the same seed.

    Re-seeding a ``torch.Generator`` each time gives the same noise every time without storing it, so the grids
    show one fixed set of latents evolving. Point samples (N, 2) are drawn as a scatter plot over the data's modes
    (when the datamodule has ``centers``), on axes fixed by those modes so the frames of the GIF line up. Writes
    ``dirpath/step_000123.png``, logs ``samples/grid`` and, at the end of training, ``dirpath/progress.gif`` of all
    grids.
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
        if samples.dim() == 2 and samples.shape[1] == 2:
            grid = scatter_plot(samples, modes=getattr(trainer.datamodule, "centers", None), title=f"step {step}")
        else:
            grid = image_grid(samples, nrow=self.nrow)
        self.frames.append(grid)
        self.last_path = save_png(grid, self.png_path(step))
        log_image(trainer.loggers, "samples/grid", grid, step=logged_step(trainer), caption=f"step {step}")


def batches_seen(trainer: pl.Trainer) -> int:
    """Training batches processed so far. Under manual optimization ``global_step`` counts optimizer steps (two or
    more per GAN batch), so batches are the unit a user can reason about."""
    return trainer.fit_loop.epoch_loop.total_batch_idx + 1


def scatter_plot(points: torch.Tensor, modes: torch.Tensor | None = None, title: str = "", size_px: int = 480) -> np.ndarray:
    """2-D points -> uint8 HWC RGB image of a scatter plot (matplotlib, Agg backend: no display needed).

    ``modes`` are drawn faintly behind the samples and fix the axes (with a margin), so successive frames compare;
    without them the axes fit the points.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = points.detach().float().cpu().numpy()
    dpi = 100
    fig, ax = plt.subplots(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
    try:
        reference = points
        if modes is not None:
            modes = torch.as_tensor(modes).float().cpu().numpy()
            ax.scatter(modes[:, 0], modes[:, 1], s=300, c="tab:green", alpha=0.15, linewidths=0, label="data modes")
            reference = modes
        ax.scatter(points[:, 0], points[:, 1], s=6, c="tab:blue", alpha=0.6, linewidths=0, label="samples")
        low, high = reference.min(0), reference.max(0)
        margin = 0.25 * max(float((high - low).max()), 1e-3)
        ax.set_xlim(low[0] - margin, high[0] + margin)
        ax.set_ylim(low[1] - margin, high[1] + margin)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    buffer.seek(0)
    from PIL import Image

    return np.asarray(Image.open(buffer).convert("RGB"))


def logged_step(trainer: pl.Trainer) -> int:
    """The step Lightning itself logs ``self.log`` values at (batches, ``_batches_that_stepped``), so images and
    metric curves share the x-axis of the losses. ``trainer.global_step`` counts optimizer steps: two per GAN batch."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped
