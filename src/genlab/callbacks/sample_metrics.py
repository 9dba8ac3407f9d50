"""Periodic sample-quality evaluation: any torchmetrics ``Metric`` fed by the ``sample()`` contract."""

import pytorch_lightning as pl
import torch
from torchmetrics import Metric

from genlab.callbacks.samples import batches_seen


class SampleMetrics(pl.Callback):
    """Every ``every_n_steps`` training batches and at the end of training, draw ``num_samples`` samples (in chunks
    of ``batch_size``, seeded), feed them to each metric's ``update(samples)`` and log ``metrics/<name>`` for every
    value its ``compute()`` returns (a tensor, or a dict of them).

    A metric that needs real-data statistics gets the datamodule once through ``prepare(datamodule)`` before
    training. The metrics live here, not on the LightningModule, so their weights never enter a checkpoint.
    """

    def __init__(
        self,
        metrics: dict[str, Metric] | None = None,
        every_n_steps: int = 1000,
        num_samples: int = 1000,
        batch_size: int = 250,
        seed: int = 0,
    ):
        self.metrics = dict(metrics or {})
        self.every_n_steps = every_n_steps
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.last_step: int | None = None
        self.history: list[dict[str, float]] = []

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for metric in self.metrics.values():
            if hasattr(metric, "prepare"):
                metric.prepare(trainer.datamodule)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = batches_seen(trainer)
        if self.metrics and step % self.every_n_steps == 0:
            self.evaluate(trainer, pl_module, step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = batches_seen(trainer)
        if self.metrics and self.last_step != step:
            self.evaluate(trainer, pl_module, step)

    @torch.no_grad()
    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, step: int) -> dict[str, float]:
        values = score_samples(pl_module, self.metrics, self.num_samples, self.batch_size, self.seed)
        self.last_step = step
        self.history.append({"step": step, **values})
        for logger in trainer.loggers:
            logger.log_metrics({f"metrics/{k}": v for k, v in values.items()}, step=trainer.global_step)
        trainer.callback_metrics.update({f"metrics/{k}": torch.tensor(v) for k, v in values.items()})
        return values


@torch.no_grad()
def score_samples(
    model: pl.LightningModule, metrics: dict[str, Metric], num_samples: int, batch_size: int, seed: int = 0
) -> dict[str, float]:
    """Draw ``num_samples`` from ``model.sample`` with a seeded generator and return every metric's values."""
    generator = torch.Generator().manual_seed(seed)
    for metric in metrics.values():
        metric.to(model.device).reset()
    for start in range(0, num_samples, batch_size):
        samples = model.sample(min(batch_size, num_samples - start), generator=generator)
        for metric in metrics.values():
            metric.update(samples)
    values: dict[str, float] = {}
    for name, metric in metrics.items():
        result = metric.compute()
        if isinstance(result, dict):
            values |= {f"{name}_{k}" if k != name else name: float(v) for k, v in result.items()}
        else:
            values[name] = float(result)
    return values
