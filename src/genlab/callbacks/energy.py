"""Held-out and training free energy for energy-based models (``free_energy(images)``: the RBM). Their gap is the
overfitting monitor of Hinton's guide (2010, "A Practical Guide to Training RBMs", Sec. 6): log Z cancels in it, so
it needs no partition function."""

import pytorch_lightning as pl
import torch

from genlab.callbacks.periodic import PeriodicCallback, logged_step


class FreeEnergy(PeriodicCallback):
    """Every ``every_n_epochs`` epochs (and at the end): the mean free energy of the validation split and of as many
    training images, logged as ``val/free_energy``, ``train/free_energy_eval`` and ``val/free_energy_gap``
    (held out minus training; it grows when the model overfits). A no-op for models without ``free_energy``."""

    capability = "free_energy(images)"

    def __init__(self, every_n_epochs: int = 1):
        super().__init__(every_n_epochs=every_n_epochs)
        self.history: list[dict[str, float]] = []

    def supports(self, pl_module: pl.LightningModule) -> bool:
        return callable(getattr(pl_module, "free_energy", None))

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        datamodule = trainer.datamodule
        held_out = mean_free_energy(pl_module, datamodule.val_dataloader(), limit=None)
        train = mean_free_energy(pl_module, datamodule.train_dataloader(), limit=held_out[1])
        values = {"val/free_energy": held_out[0], "train/free_energy_eval": train[0], "val/free_energy_gap": held_out[0] - train[0]}
        self.history.append({"epoch": trainer.current_epoch, **values})
        for logger in trainer.loggers:
            logger.log_metrics(values, step=logged_step(trainer))
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in values.items()})
        return values


def mean_free_energy(model, loader, limit: int | None) -> tuple[float, int]:
    """(mean F over the loader's first ``limit`` images (all when None), how many were used)."""
    total, count = 0.0, 0
    for batch in loader:
        images = batch.images if limit is None else batch.images[: limit - count]
        total += float(model.free_energy(images).sum())
        count += len(images)
        if limit is not None and count >= limit:
            break
    return total / max(count, 1), count
