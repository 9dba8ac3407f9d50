"""Sample grids from a fixed noise batch during training, as PNGs, logger images and a closing GIF.

Images (N, C, H, W) become an image grid; points (N, 2) become a scatter plot. The choice follows the shape of
what ``sample()`` returns, never the type of the model.
"""

import io
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from genlab.callbacks.periodic import PeriodicCallback, batches_seen, logged_step
from genlab.data.batch import conditions_for
from genlab.images import image_grid, log_image, save_gif, save_png
from genlab.models.base import evaluating


class SampleGrid(PeriodicCallback):
    """Every ``every_n_steps`` training batches and/or every ``every_n_epochs`` epochs (and at the end), draw
    ``num_samples`` with the same seed and, for a conditional model, the datamodule's same seeded conditions.

    Re-seeding a ``torch.Generator`` each time gives the same noise every time without storing it, so the grids
    show one fixed set of latents evolving. Point samples (N, 2) are drawn as a scatter plot over the data's modes
    (when the datamodule has ``centers``), on axes fixed by those modes so the frames of the GIF line up. When the
    conditions are images (a translator's sources), each row of sources is followed by the row of its outputs; a
    model with ``translation_rows`` (every :class:`~genlab.models.translation.TranslationModule`) names its rows
    (source | translated | what the scheme adds), and the ground truth follows as a last row where the datamodule
    knows it (:func:`translation_grid_rows`). The caption lists the rows.
    Writes ``dirpath/step_000123.png``, logs ``samples/grid`` and, at the end of training, ``dirpath/progress.gif``
    of all grids.
    """

    def __init__(
        self,
        dirpath: str | Path,
        every_n_steps: int | None = 200,
        every_n_epochs: int | None = None,
        num_samples: int = 64,
        nrow: int = 8,
        seed: int = 0,
    ):
        super().__init__(every_n_steps, every_n_epochs)
        self.dirpath = Path(dirpath)
        self.num_samples = num_samples
        self.nrow = nrow
        self.seed = seed
        self.frames: list[np.ndarray] = []
        self.last_path: Path | None = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if trainer.is_global_zero and len(self.frames) > 1:
            save_gif(self.frames, self.dirpath / "progress.gif")

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = batches_seen(trainer)
        condition = conditions_for(pl_module, trainer.datamodule, self.num_samples, self.seed)
        if condition is not None:
            condition = condition.to(pl_module.device)
        caption = f"step {step}"
        if callable(getattr(pl_module, "translation_rows", None)):
            rows = translation_grid_rows(pl_module, condition, trainer.datamodule)
            grid = image_grid(interleave_rows(list(rows.values()), self.nrow), nrow=self.nrow)
            caption += ": rows " + " | ".join(rows)
        else:
            samples = pl_module.sample(self.num_samples, condition=condition, generator=torch.Generator().manual_seed(self.seed))
            if samples.dim() == 2 and samples.shape[1] == 2:
                grid = scatter_plot(samples, modes=getattr(trainer.datamodule, "centers", None), title=f"step {step}")
            elif condition is not None and condition.dim() == 4:
                grid = image_grid(interleave_rows([condition, samples], self.nrow), nrow=self.nrow)
            else:
                grid = image_grid(samples, nrow=self.nrow)
        self.frames.append(grid)
        self.last_path = save_png(grid, self.dirpath / f"step_{step:06d}.png")
        log_image(trainer.loggers, "samples/grid", grid, step=logged_step(trainer), caption=caption)


def translation_grid_rows(model: pl.LightningModule, condition, datamodule) -> dict[str, torch.Tensor]:
    """A translator's named rows (``model.translation_rows``: source, translated, whatever the scheme adds), then
    ``target``, the ground truth, where the datamodule knows it (``ground_truth_known``: paired data, a known
    mapping); in eval mode, without grad."""
    with evaluating(model):
        rows = dict(model.translation_rows(condition))
    if getattr(datamodule, "ground_truth_known", False):
        rows["target"] = datamodule.true_target(condition)
    return rows


def interleave_rows(rows: list[torch.Tensor], nrow: int) -> torch.Tensor:
    """Grid rows of ``nrow`` images cycling through ``rows`` (sources, then their translations, ...): item ``i`` of
    every tensor sits in the same column. Grayscale next to colour is repeated to three channels; smaller images
    (super-resolution inputs) are enlarged to the largest size by pixel repetition."""
    size = max((r.shape[-2:] for r in rows), key=lambda hw: hw[0] * hw[1])
    channels = max(r.shape[1] for r in rows)
    device = rows[-1].device
    rows = [
        (torch.nn.functional.interpolate(r.float(), size=size, mode="nearest") if r.shape[-2:] != size else r)
        .to(device)
        .expand(-1, channels, -1, -1)
        for r in rows
    ]
    out = []
    for start in range(0, len(rows[0]), nrow):
        out += [r[start : start + nrow] for r in rows]
    return torch.cat(out)


def scatter_plot(points: torch.Tensor, modes: torch.Tensor | None = None, title: str = "", size_px: int = 480) -> np.ndarray:
    """2-D points -> uint8 HWC RGB image of a scatter plot (matplotlib, Agg backend: no display needed).

    ``modes`` are drawn faintly behind the samples and fix the axes (with a margin), so successive frames compare;
    without them the axes fit the points.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = points.detach().float().cpu().numpy()
    dpi = 100
    fig, ax = plt.subplots(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
    try:
        reference = points
        if modes is not None:
            modes = torch.as_tensor(modes).float().cpu().numpy()
            ax.scatter(modes[:, 0], modes[:, 1], s=300, c="tab:green", alpha=0.15, linewidths=0, label="data modes")
            reference = modes
        ax.scatter(points[:, 0], points[:, 1], s=6, c="tab:blue", alpha=0.6, linewidths=0, label="samples")
        low, high = reference.min(0), reference.max(0)
        margin = 0.25 * max(float((high - low).max()), 1e-3)
        ax.set_xlim(low[0] - margin, high[0] + margin)
        ax.set_ylim(low[1] - margin, high[1] + margin)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    buffer.seek(0)
    from PIL import Image

    return np.asarray(Image.open(buffer).convert("RGB"))
