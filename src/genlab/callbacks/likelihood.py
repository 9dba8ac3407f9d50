"""Held-out negative log-likelihood for any model with ``log_likelihood(images, labels)`` (exact for PixelCNN/RNN,
the IWAE bound for VAEs) and ``bits_per_dim(nll_nats, images)``."""

import pytorch_lightning as pl
import torch

from genlab.callbacks.periodic import PeriodicCallback, logged_step
from genlab.evaluation import held_out_nll


class HeldOutLikelihood(PeriodicCallback):
    """Every ``every_n_epochs`` epochs, the mean NLL over (at most ``max_batches`` batches of) the validation split:
    logs ``val/nll_nats`` and ``val/bits_per_dim``. GANs have no likelihood; they are left alone."""

    capability = "log_likelihood(images, labels)"

    def __init__(self, every_n_epochs: int = 1, max_batches: int | None = None):
        super().__init__(every_n_epochs=every_n_epochs)
        self.max_batches = max_batches
        self.history: list[dict[str, float]] = []

    def supports(self, pl_module: pl.LightningModule) -> bool:
        return callable(getattr(pl_module, "log_likelihood", None))

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        values = held_out_nll(pl_module, trainer.datamodule.val_dataloader(), self.max_batches)
        self.history.append({"epoch": trainer.current_epoch, **values})
        for logger in trainer.loggers:
            logger.log_metrics(values, step=logged_step(trainer))
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in values.items()})
        return values
