"""Evaluation that callbacks and ``eval.py`` share: scoring samples with metrics, held-out images, held-out NLL.

Everything here talks to a model only through the sampling contract (``sample(n, condition=...)``) and duck-typed
capabilities (``log_likelihood``), and to data only through the :class:`~genlab.data.batch.Batch` contract and the
datamodule's seeded conditions.
"""

import logging
import math
from collections.abc import Mapping

import pytorch_lightning as pl
import torch
from torch import Tensor
from torchmetrics import Metric

from genlab.data.batch import Batch, conditions_for
from genlab.metrics import UnsupportedDataError
from genlab.models.base import evaluating

log = logging.getLogger(__name__)


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
    model: pl.LightningModule,
    metrics: Mapping[str, Metric],
    num_samples: int,
    batch_size: int,
    seed: int = 0,
    datamodule=None,
) -> dict[str, float]:
    """Draw ``num_samples`` from ``model.sample`` with a seeded generator (and, for a conditional model, the
    datamodule's seeded conditions) and return every metric's values. A metric with ``wants_condition = True`` gets
    ``update(samples, condition)``, the condition of each sample (``None`` for an unconditional model).

    Naming: a scalar result is ``<name>``; a ``(mean, std)`` tuple (torchmetrics' KID and IS) is ``<name>`` and
    ``<name>_std``; a dict is ``<name>_<key>`` (``<name>`` where the key equals the name); a vector is
    ``<name>_<index>``. ``compute()`` runs under a forked, seeded RNG: KID's and IS's random subsets are the same
    at every evaluation, and training's random stream is left untouched.
    """
    generator = torch.Generator().manual_seed(seed)
    conditions = conditions_for(model, datamodule, num_samples, seed)
    for metric in metrics.values():
        metric.to(model.device).reset()
    for start in range(0, num_samples, batch_size):
        count = min(batch_size, num_samples - start)
        condition = None if conditions is None else conditions[start : start + count].to(model.device)
        samples = model.sample(count, condition=condition, generator=generator)
        for metric in metrics.values():
            if getattr(metric, "wants_condition", False):  # e.g. ConditionalAccuracy: scores samples against their labels
                metric.update(samples, condition)
            else:
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


def held_out_batch(datamodule: pl.LightningDataModule | None, n: int) -> Batch:
    """The first ``n`` items of the datamodule's validation split (training split if it has none) as one Batch:
    the same images every time, because validation loaders do not shuffle."""
    if datamodule is None:
        raise RuntimeError("held-out images come from the datamodule: fit with datamodule=... (or pass one).")
    if getattr(datamodule, "train_set", None) is None:
        datamodule.prepare_data()
        datamodule.setup("fit")
    val_set = getattr(datamodule, "val_set", None)
    loader = datamodule.val_dataloader() if val_set is not None and len(val_set) else datamodule.train_dataloader()
    batches, count = [], 0
    for batch in loader:
        batches.append(batch)
        count += len(batch)
        if count >= n:
            break
    return Batch.cat(batches)[:n]


@torch.no_grad()
def held_out_nll(model, loader, max_batches: int | None = None, **log_likelihood_kwargs) -> dict[str, float]:
    """Mean NLL (nats per image) and bits/dim of ``model`` over ``loader`` (the callback and the benchmark)."""
    total, bits, count = 0.0, 0.0, 0
    with evaluating(model):
        for index, batch in enumerate(loader):
            if max_batches is not None and index >= max_batches:
                break
            batch = batch.to(model.device)
            nll = -model.log_likelihood(batch.images, batch.labels, **log_likelihood_kwargs)
            total += float(nll.sum())
            bits += float(model.bits_per_dim(nll, batch.images).sum())
            count += len(nll)
    if count == 0:
        return {"val/nll_nats": math.nan, "val/bits_per_dim": math.nan}
    return {"val/nll_nats": total / count, "val/bits_per_dim": bits / count}
