"""Shared plumbing for callbacks that evaluate or draw something every few epochs on fixed held-out images."""

import logging

import pytorch_lightning as pl
import torch

log = logging.getLogger(__name__)


class EpochCallback(pl.Callback):
    """Runs :meth:`run` every ``every_n_epochs`` training epochs and once more at the end of training if the last
    epoch was not one of them. :meth:`supports` names the model capability it needs (duck typing, no types): a
    model without it is told about once in the log and otherwise left alone."""

    capability = ""

    def __init__(self, every_n_epochs: int = 1):
        if every_n_epochs < 1:
            raise ValueError(f"{type(self).__name__}.every_n_epochs must be >= 1, got {every_n_epochs}.")
        self.every_n_epochs = every_n_epochs
        self.last_epoch: int | None = None
        self._warned = False

    def supports(self, pl_module: pl.LightningModule) -> bool:
        return True

    def _maybe_run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        if not self.supports(pl_module):
            if not self._warned:
                # debug, not info: the default callback list serves every model, so a GAN run need not hear about them
                log.debug("%s: %s has no %s; skipping.", type(self).__name__, type(pl_module).__name__, self.capability)
                self._warned = True
            return
        self.last_epoch = trainer.current_epoch
        self.run(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._maybe_run(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.last_epoch != trainer.current_epoch and self.last_epoch != trainer.current_epoch - 1:
            self._maybe_run(trainer, pl_module)

    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        raise NotImplementedError


def held_out_images(datamodule: pl.LightningDataModule | None, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` images and labels of the datamodule's validation loader (training loader if it has none):
    the same images every time, because validation loaders do not shuffle."""
    if datamodule is None:
        raise RuntimeError("this callback reads held-out images from the datamodule: fit with datamodule=...")
    loader = datamodule.val_dataloader() if datamodule.val_set is not None and len(datamodule.val_set) else datamodule.train_dataloader()
    images, labels, count = [], [], 0
    for x, y in loader:
        images.append(x)
        labels.append(y)
        count += len(x)
        if count >= n:
            break
    return torch.cat(images)[:n], torch.cat(labels)[:n]
