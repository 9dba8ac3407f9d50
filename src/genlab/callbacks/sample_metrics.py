"""Periodic sample-quality evaluation: any torchmetrics ``Metric`` fed by the ``sample()`` contract."""

import time
from collections.abc import Mapping

import pytorch_lightning as pl
import torch
from torchmetrics import Metric

from genlab.callbacks.periodic import PeriodicCallback, batches_seen, logged_step
from genlab.evaluation import prepare_metrics, score_samples
from genlab.metrics import metric_entries


def single_process() -> bool:
    """``distributed_available_fn`` of a torchmetrics ``Metric`` that only one process updates and computes."""
    return False


class SampleMetrics(PeriodicCallback):
    """Every ``every_n_steps`` training batches and at the end of training, draw ``num_samples`` samples (in chunks
    of ``batch_size``, seeded), feed them to each metric's ``update(samples)`` and log ``metrics/<name>`` for every
    value its ``compute()`` returns (see :func:`genlab.evaluation.score_samples` for how tuples and dicts are named).
    Conditional models are sampled with the datamodule's seeded conditions.

    A metric that needs real-data statistics gets the datamodule once through ``prepare(datamodule)`` at the start
    of fitting, on the model's device, so a dataset the metric cannot score (``metrics=mnist data=cifar10``) stops
    the run before the first step rather than after hours; with ``on_unsupported_data="skip"`` (the default
    ``metrics=default`` of train.py) such metrics are dropped with one warning instead. The metrics live here, not on the LightningModule, so
    their weights (InceptionV3: ~95 MB) never enter a checkpoint.
    """

    def __init__(
        self,
        metrics: Mapping[str, Metric] | None = None,
        every_n_steps: int | None = 1000,  # None: only at the end of training
        num_samples: int = 1000,
        batch_size: int = 250,
        seed: int = 0,
        on_unsupported_data: str = "error",
    ):
        super().__init__(every_n_steps=every_n_steps)
        self.metrics = metric_entries(metrics)
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        if on_unsupported_data not in ("error", "skip"):
            raise ValueError(f"on_unsupported_data must be 'error' or 'skip', got {on_unsupported_data!r}.")
        self.on_unsupported_data = on_unsupported_data
        self.history: list[dict[str, float]] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:  # under DDP rank 0 alone scores samples; the others need no reference features
            self.metrics = {}
            return
        self.metrics = prepare_metrics(self.metrics, trainer.datamodule, pl_module.device, self.on_unsupported_data)
        for metric in self.metrics.values():  # computed by one process: no gather with ranks that are not there
            for part in metric.modules():
                if isinstance(part, Metric):
                    part.distributed_available_fn = single_process

    def supports(self, pl_module: pl.LightningModule) -> bool:
        return bool(self.metrics)

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        start = time.perf_counter()
        values = score_samples(pl_module, self.metrics, self.num_samples, self.batch_size, self.seed, trainer.datamodule)
        self.history.append({"step": batches_seen(trainer), **values, "seconds": time.perf_counter() - start})
        for logger in trainer.loggers:
            logger.log_metrics({f"metrics/{k}": v for k, v in values.items()}, step=logged_step(trainer))
        trainer.callback_metrics.update({f"metrics/{k}": torch.tensor(v) for k, v in values.items()})
        return values
