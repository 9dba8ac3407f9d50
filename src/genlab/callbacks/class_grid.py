"""Class grids: one row per class, the same latent z down each column. What a class-conditional model does with the
label (the digit) and what it leaves to z (slant, stroke width, style) in one picture."""

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch

from genlab.callbacks.periodic import PeriodicCallback, batches_seen, logged_step
from genlab.images import image_grid, log_image, save_png
from genlab.models.base import evaluating

log = logging.getLogger(__name__)


class ClassGrid(PeriodicCallback):
    """Every ``every_n_steps`` training batches and/or ``every_n_epochs`` epochs (and at the end): ``num_columns``
    latents drawn with ``seed`` (the same ones every time, so the grids show one set of latents evolving), each decoded
    for every class: ``dirpath/step_000123.png``, logged as ``samples/class_grid``.

    For models with ``conditioning == "labels"``, ``num_classes`` and ``decode(z, labels)`` / ``latent_dim``
    (conditional GANs, CVAE); ``z`` is drawn from the N(0, I) prior both schemes use. Other models are left alone.
    """

    capability = "class conditioning (conditioning 'labels', num_classes) and decode(z, labels) with latent_dim"

    def __init__(
        self,
        dirpath: str | Path,
        every_n_steps: int | None = 200,
        every_n_epochs: int | None = None,
        num_columns: int = 8,
        seed: int = 0,
    ):
        super().__init__(every_n_steps, every_n_epochs)
        if num_columns < 1:
            raise ValueError(f"callbacks.class_grid.num_columns must be a positive integer, got {num_columns}.")
        self.dirpath, self.num_columns, self.seed = Path(dirpath), num_columns, seed
        self.last_path: Path | None = None

    def supports(self, pl_module: pl.LightningModule) -> bool:
        return (
            getattr(pl_module, "conditioning", None) == "labels"
            and int(getattr(pl_module, "num_classes", 0) or 0) >= 2
            and callable(getattr(pl_module, "decode", None))
            and isinstance(getattr(pl_module, "latent_dim", None), int)
        )

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        num_classes, step = pl_module.num_classes, batches_seen(trainer)
        z = pl_module.randn(self.num_columns, pl_module.latent_dim, generator=torch.Generator().manual_seed(self.seed))
        labels = torch.arange(num_classes, device=pl_module.device).repeat_interleave(self.num_columns)
        with evaluating(pl_module):
            images = pl_module.decode(z.repeat(num_classes, 1), labels)
        if images.dim() != 4:  # points (N, dim): no image grid to draw; SampleGrid's scatter plot shows them
            log.debug("ClassGrid: %s samples are not images; skipping.", type(pl_module).__name__)
            return
        grid = image_grid(images, nrow=self.num_columns)
        self.last_path = save_png(grid, self.dirpath / f"step_{step:06d}.png")
        caption = f"step {step}: rows = classes 0..{num_classes - 1}, one latent per column"
        log_image(trainer.loggers, "samples/class_grid", grid, step=logged_step(trainer), caption=caption)
