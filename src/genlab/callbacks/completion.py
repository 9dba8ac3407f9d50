"""Completion grids (original | covered | completed) for any model with ``complete(images, given_pixels, ...)``."""

from pathlib import Path

import pytorch_lightning as pl
import torch

from genlab.callbacks.periodic import PeriodicCallback, logged_step
from genlab.evaluation import held_out_batch
from genlab.completion import completion_rows
from genlab.images import image_grid, log_image, save_png


class CompletionGrid(PeriodicCallback):
    """Seed 000's demo: fixed held-out images with the first ``fractions`` of their pixels given and the rest
    sampled. One column per image; rows: originals, then covered and completed for each fraction
    (``dirpath/epoch_XXX.png``, ``completion/grid``). Class-conditional models complete with the true labels."""

    capability = "complete(images, given_pixels)"

    def __init__(
        self, dirpath: str | Path, fractions: tuple[float, ...] = (0.5, 0.25), num_images: int = 8, every_n_epochs: int = 1, seed: int = 0
    ):
        super().__init__(every_n_epochs=every_n_epochs)
        self.dirpath, self.fractions, self.num_images, self.seed = Path(dirpath), tuple(fractions), num_images, seed
        self.last_path: Path | None = None

    def supports(self, pl_module: pl.LightningModule) -> bool:
        return callable(getattr(pl_module, "complete", None))

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        batch = held_out_batch(trainer.datamodule, self.num_images).to(pl_module.device)
        condition = batch.labels if pl_module.conditioning == "labels" else None
        rows = completion_rows(pl_module, batch.images, self.fractions, condition=condition, seed=self.seed)
        grid = image_grid(rows, nrow=len(batch))
        self.last_path = save_png(grid, self.dirpath / f"epoch_{trainer.current_epoch:03d}.png")
        caption = "rows: original, " + ", ".join(f"{f:.0%} given / completed" for f in self.fractions)
        log_image(trainer.loggers, "completion/grid", grid, step=logged_step(trainer), caption=caption)
