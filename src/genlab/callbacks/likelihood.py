"""Held-out negative log-likelihood for any model with ``log_likelihood(images, labels)`` (exact for PixelCNN/RNN,
the IWAE bound for VAEs) and ``bits_per_dim(nll_nats, images)``."""

import math

import pytorch_lightning as pl
import torch

from genlab.callbacks.samples import logged_step
from genlab.callbacks.periodic import EpochCallback
from genlab.models.base import evaluating


class HeldOutLikelihood(EpochCallback):
    """Every ``every_n_epochs`` epochs, the mean NLL over (at most ``max_batches`` batches of) the validation split:
    logs ``val/nll_nats`` and ``val/bits_per_dim``. GANs have no likelihood; they are left alone."""

    capability = "log_likelihood(images, labels)"

    def __init__(self, every_n_epochs: int = 1, max_batches: int | None = None):
        super().__init__(every_n_epochs)
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


@torch.no_grad()
def held_out_nll(model, loader, max_batches: int | None = None, **log_likelihood_kwargs) -> dict[str, float]:
    """Mean NLL (nats per image) and bits/dim of ``model`` over ``loader`` (the benchmark uses this too)."""
    total, bits, count = 0.0, 0.0, 0
    with evaluating(model):
        for index, (images, labels) in enumerate(loader):
            if max_batches is not None and index >= max_batches:
                break
            images = images.to(model.device)
            nll = -model.log_likelihood(images, labels.to(model.device), **log_likelihood_kwargs)
            total += float(nll.sum())
            bits += float(model.bits_per_dim(nll, images).sum())
            count += len(nll)
    if count == 0:
        return {"val/nll_nats": math.nan, "val/bits_per_dim": math.nan}
    return {"val/nll_nats": total / count, "val/bits_per_dim": bits / count}
