"""Grids of Markov chains for models that sample by MCMC (``gibbs_chain(n, steps, generator)``: the RBM): one row
per chain, one column per snapshot, so mixing (or the lack of it) is visible along each row."""

from pathlib import Path

import pytorch_lightning as pl
import torch

from genlab.callbacks.periodic import PeriodicCallback, batches_seen, logged_step
from genlab.images import image_grid, log_image, save_png


class ChainGrid(PeriodicCallback):
    """Every ``every_n_steps`` batches and/or ``every_n_epochs`` epochs (and at the end): ``chains`` chains from the
    same seeded start, snapshots after each sweep count in ``steps``. Writes ``dirpath/step_000123.png`` and logs
    ``samples/chains``. A no-op for models without ``gibbs_chain``."""

    capability = "gibbs_chain(n, steps, generator)"

    def __init__(
        self,
        dirpath: str | Path,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = 1,
        chains: int = 8,
        steps: tuple[int, ...] | list[int] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
        seed: int = 0,
    ):
        super().__init__(every_n_steps, every_n_epochs)
        if chains < 1 or not steps:
            raise ValueError(f"callbacks.chain_grid needs chains >= 1 and a non-empty list of steps, got {chains} and {list(steps)}.")
        self.dirpath, self.chains, self.steps, self.seed = Path(dirpath), chains, list(steps), seed
        self.last_path: Path | None = None

    def supports(self, pl_module: pl.LightningModule) -> bool:
        return callable(getattr(pl_module, "gibbs_chain", None))

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = batches_seen(trainer)
        snapshots = pl_module.gibbs_chain(self.chains, self.steps, torch.Generator().manual_seed(self.seed))
        grid = image_grid(snapshots.transpose(0, 1).flatten(0, 1), nrow=len(self.steps))  # row = one chain
        self.last_path = save_png(grid, self.dirpath / f"step_{step:06d}.png")
        caption = f"step {step}: one chain per row, after {', '.join(map(str, self.steps))} Gibbs sweeps"
        log_image(trainer.loggers, "samples/chains", grid, step=logged_step(trainer), caption=caption)
