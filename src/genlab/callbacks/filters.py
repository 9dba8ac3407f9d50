"""The learned filters of models whose hidden units read the image through one weight vector each
(``filters() -> (units, C, H, W)`` in [-1, 1]: the RBM), as one image grid."""

from pathlib import Path

import pytorch_lightning as pl
import torch

from genlab.callbacks.periodic import PeriodicCallback, batches_seen, logged_step
from genlab.images import image_grid, log_image, save_png


class FilterGrid(PeriodicCallback):
    """Every ``every_n_epochs`` epochs and/or ``every_n_steps`` batches (and at the end): the first ``num_filters``
    filters, ``nrow`` per row (grey = 0, white/black = the unit's largest positive/negative weight). Writes
    ``dirpath/step_000123.png`` and logs ``filters/grid``. A no-op for models without ``filters()``."""

    capability = "filters()"

    def __init__(self, dirpath: str | Path, every_n_steps: int | None = None, every_n_epochs: int | None = 1,
                 num_filters: int = 100, nrow: int = 10):
        super().__init__(every_n_steps, every_n_epochs)
        if num_filters < 1 or nrow < 1:
            raise ValueError(f"callbacks.filter_grid needs num_filters >= 1 and nrow >= 1, got {num_filters} and {nrow}.")
        self.dirpath, self.num_filters, self.nrow = Path(dirpath), num_filters, nrow
        self.last_path: Path | None = None

    def supports(self, pl_module: pl.LightningModule) -> bool:
        return callable(getattr(pl_module, "filters", None))

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = batches_seen(trainer)
        grid = image_grid(pl_module.filters()[: self.num_filters], nrow=self.nrow)
        self.last_path = save_png(grid, self.dirpath / f"step_{step:06d}.png")
        log_image(trainer.loggers, "filters/grid", grid, step=logged_step(trainer), caption=f"step {step}: hidden-unit filters")
