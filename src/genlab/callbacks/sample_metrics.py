"""Periodic sample-quality evaluation: any torchmetrics ``Metric`` fed by the ``sample()`` contract."""

import logging
import time
from collections.abc import Mapping

import pytorch_lightning as pl
import torch
from torch import Tensor
from torchmetrics import Metric

from genlab.callbacks.samples import batches_seen, logged_step
from genlab.metrics import UnsupportedDataError, metric_entries

log = logging.getLogger(__name__)


class SampleMetrics(pl.Callback):
    """Every ``every_n_steps`` training batches and at the end of training, draw ``num_samples`` samples (in chunks
    of ``batch_size``, seeded), feed them to each metric's ``update(samples)`` and log ``metrics/<name>`` for every
    value its ``compute()`` returns (see :func:`score_samples` for how tuples and dicts are named).

    A metric that needs real-data statistics gets the datamodule once through ``prepare(datamodule)`` at the start
    of fitting, on the model's device, so a dataset the metric cannot score (``metrics=mnist data=cifar10``) stops
    the run before the first step rather than after hours; with ``on_unsupported_data="skip"`` (the default
    ``metrics=default`` of train.py) such metrics are dropped with one warning instead. The metrics live here, not on the LightningModule, so
    their weights (InceptionV3: ~95 MB) never enter a checkpoint.
    """

    def __init__(
        self,
        metrics: Mapping[str, Metric] | None = None,
        every_n_steps: int = 1000,
        num_samples: int = 1000,
        batch_size: int = 250,
        seed: int = 0,
        on_unsupported_data: str = "error",
    ):
        if every_n_steps < 1:
            raise ValueError(f"callbacks.sample_metrics.every_n_steps must be >= 1, got {every_n_steps}.")
        self.metrics = metric_entries(metrics)
        self.every_n_steps = every_n_steps
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        if on_unsupported_data not in ("error", "skip"):
            raise ValueError(f"on_unsupported_data must be 'error' or 'skip', got {on_unsupported_data!r}.")
        self.on_unsupported_data = on_unsupported_data
        self.last_step: int | None = None
        self.history: list[dict[str, float]] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.metrics = prepare_metrics(self.metrics, trainer.datamodule, pl_module.device, self.on_unsupported_data)

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
        start = time.perf_counter()
        values = score_samples(pl_module, self.metrics, self.num_samples, self.batch_size, self.seed)
        self.last_step = step
        self.history.append({"step": step, **values, "seconds": time.perf_counter() - start})
        for logger in trainer.loggers:
            logger.log_metrics({f"metrics/{k}": v for k, v in values.items()}, step=logged_step(trainer))
        trainer.callback_metrics.update({f"metrics/{k}": torch.tensor(v) for k, v in values.items()})
        return values


def prepare_metrics(
    metrics: Mapping[str, Metric], datamodule, device: torch.device | str, on_unsupported_data: str = "error"
) -> dict[str, Metric]:
    """Move the metrics to ``device`` and give those that compare with real data the datamodule. Returns the
    metrics to use: with ``on_unsupported_data="skip"``, those whose extractor refused the data are left out."""
    kept: dict[str, Metric] = {}
    refused: dict[str, UnsupportedDataError] = {}
    for name, metric in metrics.items():
        metric.to(device)
        try:
            if hasattr(metric, "prepare"):
                metric.prepare(datamodule)
        except UnsupportedDataError as err:
            if on_unsupported_data != "skip":
                raise
            refused[name] = err
            continue
        kept[name] = metric
    if refused:
        log.warning(
            f"Sample metrics {', '.join(refused)} left out: {next(iter(refused.values()))} "
            "(the default metrics skip data they cannot score; choose metrics= explicitly to make this an error)"
        )
    return kept


@torch.no_grad()
def score_samples(
    model: pl.LightningModule, metrics: Mapping[str, Metric], num_samples: int, batch_size: int, seed: int = 0
) -> dict[str, float]:
    """Draw ``num_samples`` from ``model.sample`` with a seeded generator and return every metric's values.

    Naming: a scalar result is ``<name>``; a ``(mean, std)`` tuple (torchmetrics' KID and IS) is ``<name>`` and
    ``<name>_std``; a dict is ``<name>_<key>`` (``<name>`` where the key equals the name); a vector is
    ``<name>_<index>``. ``compute()`` runs under a forked, seeded RNG: KID's and IS's random subsets are the same
    at every evaluation, and training's random stream is left untouched.
    """
    generator = torch.Generator().manual_seed(seed)
    for metric in metrics.values():
        metric.to(model.device).reset()
    for start in range(0, num_samples, batch_size):
        samples = model.sample(min(batch_size, num_samples - start), generator=generator)
        for metric in metrics.values():
            metric.update(samples)
    values: dict[str, float] = {}
    devices = [model.device] if model.device.type == "cuda" else []
    for name, metric in metrics.items():
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            values |= flatten_result(name, metric.compute())
    return values


def flatten_result(name: str, result) -> dict[str, float]:
    if isinstance(result, Mapping):
        out: dict[str, float] = {}
        for key, value in result.items():
            out |= flatten_result(name if key == name else f"{name}_{key}", value)
        return out
    if isinstance(result, (tuple, list)):
        if len(result) != 2:
            raise TypeError(f"metric {name!r} returned a sequence of {len(result)} values; return a dict of named values.")
        return {name: float(result[0]), f"{name}_std": float(result[1])}
    if isinstance(result, Tensor) and result.numel() > 1:
        return {f"{name}_{i}": float(v) for i, v in enumerate(result.flatten())}
    return {name: float(result)}
