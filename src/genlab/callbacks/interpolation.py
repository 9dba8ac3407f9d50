"""Interpolation grids between pairs of seeded latents, linear and spherical (White 2016, "Sampling Generative
Networks"; :mod:`genlab.latent` says why slerp suits Gaussian latents), for any model with ``decode(z, labels)``
and ``latent_dim``: every GAN, the VAE and the CVAE. The callback draws them during training; ``eval.py
mode=interpolate`` draws the same grids from a checkpoint through :func:`interpolation_images`.
"""

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor

from genlab.callbacks.periodic import PeriodicCallback, batches_seen, logged_step
from genlab.data.batch import conditions_for
from genlab.images import image_grid, log_image, save_png
from genlab.latent import METHODS, interpolate
from genlab.models.base import evaluating

log = logging.getLogger(__name__)


def has_latent(model) -> bool:
    """The capability interpolation and arithmetic need: ``decode(z, labels)`` and an integer ``latent_dim``."""
    return callable(getattr(model, "decode", None)) and isinstance(getattr(model, "latent_dim", None), int)


def prior_latents(model, n: int, generator: torch.Generator) -> Tensor:
    """``n`` latents (n, latent_dim) from the model's own prior: its ``draw_latent`` hook where it has one (an
    adversarial scheme's noise; InfoGAN's latent also holds its one-hot and uniform codes, which N(0, I) would not
    respect), else N(0, I) (the VAE prior). Either way the same draws that ``sample(n, generator=...)`` makes for an
    unconditional model, so a grid's endpoints are the samples of that seed."""
    draw = getattr(model, "draw_latent", None)
    if callable(draw):
        return draw(n, None, generator).z
    return model.randn(n, model.latent_dim, generator=generator)


@torch.no_grad()
def interpolation_images(model, datamodule, pairs: int, steps: int, method: str, seed: int = 0) -> Tensor:
    """(pairs * steps, ...) decodes, row-major: row i walks from latent i to latent pairs + i of ``2 * pairs``
    seeded prior draws. A class-conditional model (``conditioning == "labels"``) keeps one label per row, the
    datamodule's seeded conditions (:func:`~genlab.data.batch.conditions_for`), so a row shows the latent moving
    and not the class."""
    if pairs < 1:
        raise ValueError(f"interpolation needs at least one pair of latents, got pairs={pairs}.")
    z = prior_latents(model, 2 * pairs, torch.Generator().manual_seed(seed))
    path = interpolate(z[:pairs], z[pairs:], steps, method)
    labels = None
    if getattr(model, "conditioning", None) == "labels":
        labels = conditions_for(model, datamodule, pairs, seed).to(model.device).repeat_interleave(steps)
    with evaluating(model):
        return model.decode(path.to(model.device), labels)


class InterpolationGrid(PeriodicCallback):
    """Every ``every_n_epochs`` epochs and/or ``every_n_steps`` training batches (and at the end): one grid per
    method in ``methods`` (``linear``, ``spherical``), rows = ``pairs`` pairs of seeded latents (the same every
    time, so successive grids show one set of paths evolving), columns = ``steps`` points from one end to the other.
    Writes ``dirpath/<method>_step_000123.png`` and logs ``interpolation/<method>``. Models without a latent are
    skipped (debug log); models whose samples are not images (2-D points) too: a path of points is no grid.
    """

    capability = "decode(z, labels) and latent_dim"

    def __init__(
        self,
        dirpath: str | Path,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = 1,
        pairs: int = 8,
        steps: int = 10,
        methods: tuple[str, ...] | list[str] = METHODS,
        seed: int = 0,
    ):
        super().__init__(every_n_steps, every_n_epochs)
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ValueError(f"callbacks.interpolation.methods must be a non-empty list from {list(METHODS)}, got {list(methods)}.")
        if pairs < 1 or steps < 2:
            raise ValueError(f"callbacks.interpolation needs pairs >= 1 and steps >= 2 (the two endpoints), got {pairs} and {steps}.")
        self.dirpath, self.pairs, self.steps, self.methods, self.seed = Path(dirpath), pairs, steps, tuple(methods), seed
        self.last_paths: list[Path] = []

    def supports(self, pl_module: pl.LightningModule) -> bool:
        return has_latent(pl_module)

    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = batches_seen(trainer)
        self.last_paths = []
        for method in self.methods:
            images = interpolation_images(pl_module, trainer.datamodule, self.pairs, self.steps, method, self.seed)
            if images.dim() != 4:
                log.debug("InterpolationGrid: %s samples are not images; skipping.", type(pl_module).__name__)
                return
            grid = image_grid(images, nrow=self.steps)
            self.last_paths.append(save_png(grid, self.dirpath / f"{method}_step_{step:06d}.png"))
            caption = f"step {step}: {method} interpolation, one pair of latents per row"
            log_image(trainer.loggers, f"interpolation/{method}", grid, step=logged_step(trainer), caption=caption)
