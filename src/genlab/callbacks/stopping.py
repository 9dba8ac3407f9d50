"""``max_batches`` (conf/train.yaml): a training budget in batches, which means the same for every model.

Lightning's ``trainer.max_steps`` counts optimizer steps, and under manual optimization a GAN takes one per player
per batch (2 per batch for DCGAN, 6 per 5 batches for WGAN with ``n_critic=5``), while likelihood models take 1.
A budget in batches is what a user can compare across models; it counts the batches of the whole run, so a resumed
run stops where the uninterrupted one would have.
"""

import pytorch_lightning as pl

from genlab.callbacks.periodic import batches_seen


class StopAfterBatches(pl.Callback):
    """Stops training after ``max_batches`` training batches (end-of-fit callbacks still run)."""

    def __init__(self, max_batches: int):
        if not isinstance(max_batches, int) or isinstance(max_batches, bool) or max_batches < 1:
            raise ValueError(f"max_batches must be a positive number of training batches or null, got {max_batches!r}.")
        self.max_batches = max_batches

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        if batches_seen(trainer) >= self.max_batches:
            trainer.should_stop = True
