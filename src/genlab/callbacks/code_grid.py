"""InfoGAN's code grids (Chen et al. 2016, Fig. 2): one row per value of the categorical code, one column per value
of a continuous code swept over [-span, span], one grid per continuous code, the noise fixed. The paper sweeps
-2..2, beyond the [-1, 1] the codes were trained on, to show that rotation and width extrapolate."""

from pathlib import Path

import pytorch_lightning as pl
import torch

from genlab.callbacks.periodic import PeriodicCallback, batches_seen, logged_step
from genlab.images import image_grid, log_image, save_png


class CodeGrid(PeriodicCallback):
    """For models with ``sweep_code(index, values, generator)`` and ``continuous_codes``: every ``every_n_steps``
    batches and at the end, ``dirpath/continuous_<i>_step_XXXXXX.png`` and the logger image ``codes/continuous_<i>``
    for each continuous code i, from the same seeded noise each time."""

    capability = "sweep_code(index, values, generator) and continuous_codes"

    def __init__(
        self,
        dirpath: str | Path,
        every_n_steps: int | None = 200,
        every_n_epochs: int | None = None,
        span: float = 2.0,
        steps: int = 10,
        seed: int = 0,
    ):
        super().__init__(every_n_steps, every_n_epochs)
        if span <= 0 or steps < 2:
            raise ValueError(f"callbacks.code_grid needs span > 0 and steps >= 2, got span={span}, steps={steps}.")
        self.dirpath, self.span, self.steps, self.seed = Path(dirpath), span, steps, seed
        self.last_paths: list[Path] = []

    def supports(self, pl_module: pl.LightningModule) -> bool:
        has_sweep = callable(getattr(pl_module, "sweep_code", None))
        return has_sweep and isinstance(getattr(pl_module, "continuous_codes", None), int)

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = batches_seen(trainer)
        values = torch.linspace(-self.span, self.span, self.steps)
        self.last_paths = []
        for index in range(pl_module.continuous_codes):
            images = pl_module.sweep_code(index, values, generator=torch.Generator().manual_seed(self.seed))
            grid = image_grid(images, nrow=self.steps)
            self.last_paths.append(save_png(grid, self.dirpath / f"continuous_{index}_step_{step:06d}.png"))
            caption = (f"step {step}: rows = categorical code, columns = continuous code {index} "
                       f"from {-self.span:g} to {self.span:g}")
            log_image(trainer.loggers, f"codes/continuous_{index}", grid, step=logged_step(trainer), caption=caption)
