"""Standing statistics: BatchNorm population statistics for sampling, measured on the generator's own latents.

A generator with BatchNorm trains on batch statistics and samples (eval mode) with running averages that training
kept with momentum 0.1: an average over the last ~10 batches, each normalised by its own noisy batch statistics,
taken while the weights moved; an EMA generator even borrows the live generator's. Where precision matters the
difference shows: on the 25-Gaussian grid (std 0.05, samples count when within 0.15 of a mode) the same five
checkpoints put 78.5 % of their samples near a mode with the running averages and 93.5 % with statistics measured
in 20 batches of 1000 (docs/toy_modes.md). Brock et al. 2019 (BigGAN) sample with such "standing statistics" (their
code's --accumulate_stats); Wu & Johnson 2021 ("Rethinking 'Batch' in BatchNorm", PreciseBN) show why the batches
must be large: each layer's statistics are measured on inputs normalised by the layers before it with *batch*
statistics, so small batches put their noise into the later layers' estimates (here 100 batches of 100: 86.8 %).
Not a free gain everywhere: the default DCGAN run scores classifier FID 3.91 with it against 3.70 without.
"""

from collections.abc import Callable, Mapping

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batch_norm_layers(net: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers of ``net`` that keep running statistics."""
    return [m for m in net.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def check_standing_statistics(settings: Mapping | None) -> dict[str, int] | None:
    """``{"batches": B, "batch_size": N}`` as plain ints, or ``None``; anything else is refused with how to set it."""
    if settings is None:
        return None
    settings = dict(settings) if isinstance(settings, Mapping) else settings
    if not isinstance(settings, dict) or set(settings) != {"batches", "batch_size"} or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in settings.values()
    ):
        raise ValueError(
            "model.standing_statistics must be null or {batches: B, batch_size: N} with positive integers (e.g. "
            f"{{batches: 20, batch_size: 1000}}: BatchNorm statistics measured on 20 x 1000 latents), got {settings!r}."
        )
    return settings


@torch.no_grad()
def measure_standing_statistics(net: nn.Module, forward: Callable[[int], object], batches: int, batch_size: int) -> None:
    """Replace the running statistics of every BatchNorm layer of ``net`` by the average over ``batches`` forward
    passes of ``forward(batch_size)`` in train mode (each layer's mean and unbiased variance per batch, averaged:
    PyTorch's cumulative average, ``momentum=None``). ``net`` ends in eval mode with its layers' momenta restored;
    a net without BatchNorm is left alone."""
    layers = batch_norm_layers(net)
    if not layers:
        return
    if any(isinstance(m, nn.SyncBatchNorm) for m in layers) and dist.is_available() and dist.is_initialized():
        raise RuntimeError(
            "model.standing_statistics cannot be measured for SyncBatchNorm layers in a multi-process run: sampling "
            "runs on one process and their train-mode forward waits for the others. Use trainer.sync_batchnorm=false "
            "or model.standing_statistics=null."
        )
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    try:
        for _ in range(batches):
            forward(batch_size)
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        net.eval()
