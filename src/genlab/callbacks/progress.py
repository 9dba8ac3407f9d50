"""The progress bar, redrawn at most ``max_redraws_per_second`` times a second instead of after every batch.

Lightning's ``RichProgressBar`` reads every logged metric and redraws the console after each training batch: 0.5-1 ms,
1-10 % of a 2-D toy GAN's whole step (bench/step_time.py --table toy). A few redraws a second read the same to a
person; batches in between skip the redraw (the counter catches up at the next one), and the last batch of an epoch
always redraws.
"""

import time

import pytorch_lightning as pl
from pytorch_lightning.callbacks import RichProgressBar


class ThrottledRichProgressBar(RichProgressBar):
    def __init__(self, max_redraws_per_second: float = 4.0, **kwargs):
        if not max_redraws_per_second > 0:
            raise ValueError(
                f"callbacks.rich_progress_bar.max_redraws_per_second must be a positive number, got {max_redraws_per_second!r}."
            )
        super().__init__(**kwargs)
        self.min_interval = 1.0 / max_redraws_per_second
        self._last_redraw = float("-inf")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        now = time.monotonic()
        if now - self._last_redraw >= self.min_interval or batch_idx + 1 >= self.total_train_batches:
            self._last_redraw = now
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
