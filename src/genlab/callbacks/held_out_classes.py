"""How well a model's own reading of real images matches their classes, on the held-out split: InfoGAN's categorical
code as a clusterer (:class:`CodeAccuracy`) and a semi-supervised GAN's discriminator as a classifier
(:class:`ClassifierError`). Both are capabilities (``categorical_code(images)``, ``classify(images)``), so the default
callback list carries them and they stay silent for every other model."""

from collections.abc import Iterator

import pytorch_lightning as pl
import torch

from genlab.callbacks.periodic import PeriodicCallback, logged_step
from genlab.data.batch import Batch
from genlab.metrics.clustering import ClusterAccuracy


def held_out_labelled(datamodule: pl.LightningDataModule | None, max_images: int | None, who: str) -> Iterator[Batch]:
    """The validation split in loader order, up to ``max_images`` (``None``: all). Never the training split: a score
    of images the model trained on, or of labels it was given, is not a held-out score."""
    if datamodule is None:
        raise RuntimeError(f"{who} scores held-out images: fit with datamodule=... .")
    if getattr(datamodule, "train_set", None) is None:
        datamodule.prepare_data()
        datamodule.setup("fit")
    val_set = getattr(datamodule, "val_set", None)
    if val_set is None or len(val_set) == 0:
        raise ValueError(
            f"{who} needs held-out images, but {type(datamodule).__name__} has no validation split; "
            "set data.val_fraction > 0."
        )
    seen = 0
    for batch in datamodule.val_dataloader():
        if batch.labels is None or bool((batch.labels < 0).any()):
            raise ValueError(
                f"{who} compares with the classes of held-out images, but {type(datamodule).__name__} has none; "
                "use labelled data (data=mnist5k, mnist)."
            )
        if max_images is not None:
            batch = batch[: max_images - seen]
        seen += len(batch)
        yield batch
        if max_images is not None and seen >= max_images:
            return


def log_values(trainer: pl.Trainer, values: dict[str, float]) -> None:
    """To every logger at the step of the losses, and into ``callback_metrics`` (train.py returns those)."""
    for logger in trainer.loggers:
        logger.log_metrics(values, step=logged_step(trainer))
    trainer.callback_metrics.update({k: torch.tensor(v) for k, v in values.items()})


class CodeAccuracy(PeriodicCallback):
    """``metrics/infogan_code_accuracy``: accuracy of ``categorical_code(images)`` on held-out images under the best
    one-to-one mapping of code values to classes (Hungarian assignment, :class:`ClusterAccuracy`). Chance is about
    1/K; Chen et al. 2016 report 5 % error on MNIST."""

    capability = "categorical_code(images) and categories"

    def __init__(self, every_n_steps: int | None = 250, every_n_epochs: int | None = None, num_images: int | None = None):
        super().__init__(every_n_steps, every_n_epochs)
        self.num_images = num_images
        self.history: list[float] = []

    def supports(self, pl_module: pl.LightningModule) -> bool:
        has_code = callable(getattr(pl_module, "categorical_code", None))
        return has_code and isinstance(getattr(pl_module, "categories", None), int)

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        datamodule = trainer.datamodule
        metric = ClusterAccuracy(pl_module.categories, datamodule.num_classes, sync_on_compute=False)  # rank 0's alone
        for batch in held_out_labelled(datamodule, self.num_images, type(self).__name__):
            metric.update(pl_module.categorical_code(batch.images.to(pl_module.device)).cpu(), batch.labels.cpu())
        accuracy = float(metric.compute())
        self.history.append(accuracy)
        log_values(trainer, {"metrics/infogan_code_accuracy": accuracy})


class ClassifierError(PeriodicCallback):
    """``metrics/classifier_error``: the share of held-out images whose argmax of ``classify(images)`` is not their
    class (the semi-supervised GAN's number; Salimans et al. 2016: 0.93 % with 100 labels on MNIST)."""

    capability = "classify(images)"

    def __init__(self, every_n_steps: int | None = 250, every_n_epochs: int | None = None, num_images: int | None = None):
        super().__init__(every_n_steps, every_n_epochs)
        self.num_images = num_images
        self.history: list[float] = []

    def supports(self, pl_module: pl.LightningModule) -> bool:
        return callable(getattr(pl_module, "classify", None))

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        wrong, total = 0, 0
        for batch in held_out_labelled(trainer.datamodule, self.num_images, type(self).__name__):
            predicted = pl_module.classify(batch.images.to(pl_module.device)).argmax(1).cpu()
            wrong += int((predicted != batch.labels.cpu()).sum())
            total += len(batch)
        self.history.append(wrong / total)
        log_values(trainer, {"metrics/classifier_error": wrong / total})
