"""The one sampling contract every generative model implements.

Callbacks (sample grids, GIFs) and metrics only ever call :meth:`GenerativeModule.sample`, so any model composes
with any of them without type checks.
"""

from contextlib import contextmanager
from typing import Iterator

import pytorch_lightning as pl
import torch
from torch import Tensor, nn


class GenerativeModule(pl.LightningModule):
    """Base class: ``sample(n, *, condition=None, generator=None) -> Tensor[n, C, H, W]`` in [-1, 1]."""

    def sample(self, n: int, *, condition: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` samples. ``generator`` seeds all randomness, so equal seeds give equal samples on any device."""
        raise NotImplementedError

    def randn(self, *shape: int, generator: torch.Generator | None = None) -> Tensor:
        """Standard normal noise on this module's device. Drawn on the CPU when seeded, so a seed means the same
        noise whatever the accelerator."""
        if generator is None:
            return torch.randn(*shape, device=self.device)
        return torch.randn(*shape, generator=generator).to(self.device)


@contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no grad for the duration, then the previous mode back (sampling mid-training must not leave
    BatchNorm or dropout switched)."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield module
    finally:
        module.train(was_training)


def reject_condition(model: GenerativeModule, condition: Tensor | None) -> None:
    if condition is not None:
        raise ValueError(
            f"{type(model).__name__} is unconditional and cannot sample from a condition; "
            "pick a conditional model or call sample(n) without condition=."
        )
