"""The one schedule every periodic callback shares: every N training batches and/or every N epochs, and once more
at the end of training unless the last run already saw the final batch."""

import logging

import pytorch_lightning as pl

log = logging.getLogger(__name__)


def batches_seen(trainer: pl.Trainer) -> int:
    """Training batches processed so far. Under manual optimization ``global_step`` counts optimizer steps (two or
    more per GAN batch), so batches are the unit a user can reason about."""
    return trainer.fit_loop.epoch_loop.total_batch_idx + 1


def logged_step(trainer: pl.Trainer) -> int:
    """The step Lightning itself logs ``self.log`` values at (batches, ``_batches_that_stepped``), so images and
    metric curves share the x-axis of the losses. ``trainer.global_step`` counts optimizer steps: two per GAN batch."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


class PeriodicCallback(pl.Callback):
    """Runs :meth:`run` every ``every_n_steps`` training batches and/or every ``every_n_epochs`` epochs (either may
    be ``None``), and at the end of training if the last run was not at the final batch. Only on the global-zero
    process, never during the sanity check.

    :meth:`supports` names the model capability a subclass needs (duck typing, no types): a model without it is
    told about once in the log and otherwise left alone.
    """

    capability = ""

    def __init__(self, every_n_steps: int | None = None, every_n_epochs: int | None = None):
        for name, value in (("every_n_steps", every_n_steps), ("every_n_epochs", every_n_epochs)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{type(self).__name__}.{name} must be a positive integer or null, got {value!r}.")
        self.every_n_steps = every_n_steps
        self.every_n_epochs = every_n_epochs
        self.last_run_step: int | None = None
        self._told = False

    def supports(self, pl_module: pl.LightningModule) -> bool:
        return True

    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        raise NotImplementedError

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        if self.every_n_steps and batches_seen(trainer) % self.every_n_steps == 0:
            self._maybe_run(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._maybe_run(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._maybe_run(trainer, pl_module)

    def _maybe_run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = batches_seen(trainer)
        if not trainer.is_global_zero or trainer.sanity_checking or self.last_run_step == step:
            return
        if not self.supports(pl_module):
            if not self._told:
                # debug, not info: the default callback list serves every model, so a GAN run need not hear about them
                log.debug("%s: %s has no %s; skipping.", type(self).__name__, type(pl_module).__name__, self.capability)
                self._told = True
            return
        self.last_run_step = step
        self.run(trainer, pl_module)
