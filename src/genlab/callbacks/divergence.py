"""Stop a run whose loss or weights went non-finite, with the step, the culprit and what to try.

A diverged GAN (or a VAE with a too-large learning rate) otherwise trains on as NaN: black sample grids, NaN
checkpoints over ``last.ckpt``, an opaque ``linalg.eigh`` error from the metrics, and a run that ends "done". Non-
finite weights never recover, so they stop the run at once; a non-finite loss with finite weights (a skipped
mixed-precision step) is tolerated for ``patience`` batches. Listed first in ``conf/callbacks/default.yaml`` so a
diverged batch stops before any grid or metric of that batch is made; the checkpoint callback never writes
non-finite weights either (:mod:`genlab.callbacks.checkpointing`).
"""

import logging
import math

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from genlab.callbacks.periodic import batches_seen

log = logging.getLogger(__name__)

ACTIONS = ("stop", "warn")


class TrainingDiverged(RuntimeError):
    """Raised when a run's loss or weights went non-finite; the message names the batch and what to try."""


def nonfinite_tensors(module: nn.Module, modules: list[nn.Module] | None = None) -> list[str]:
    """Names of the floating-point parameters and buffers of ``module`` holding a NaN or an infinity. ``modules``:
    ``list(module.modules())``, kept by a caller that checks after every batch (walking the module tree with
    ``named_parameters`` each time costs more than the check itself)."""
    # One reduction per tensor and one sync (a NaN or inf anywhere makes the sum non-finite) instead of an isfinite
    # mask per tensor (~10x slower for the toy MLPs). A finite sum that overflowed is told apart by the exact check,
    # which only runs when the fast one trips.
    tensors = [
        t
        for m in (module.modules() if modules is None else modules)
        for t in (*m._parameters.values(), *m._buffers.values())  # this module's own, read afresh: reassignments count
        if t is not None and t.is_floating_point()
    ]
    if not tensors:
        return []
    with torch.no_grad():
        if bool(torch.isfinite(torch.stack([t.sum(dtype=torch.float32) for t in tensors])).all()):
            return []
        named = [*module.named_parameters(), *module.named_buffers()]
        return [name for name, t in named if t.is_floating_point() and not bool(torch.isfinite(t).all())]


class DivergenceGuard(pl.Callback):
    """After every training batch: stop (``action="stop"``) or warn once (``"warn"``) when a weight is non-finite,
    or when a logged loss (a ``loss`` entry of the step's output or a logged value whose name has ``loss`` in it)
    has been non-finite for ``patience`` batches in a row."""

    def __init__(self, action: str = "stop", patience: int = 1):
        if action not in ACTIONS:
            raise ValueError(f"callbacks.divergence.action must be one of {ACTIONS}, got {action!r}.")
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"callbacks.divergence.patience must be a positive number of batches, got {patience!r}.")
        self.action = action
        self.patience = patience
        self.nonfinite_batches = 0
        self._warned = False
        self.modules: list[nn.Module] | None = None  # the module's tree, listed at every epoch start

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.modules = list(pl_module.modules())

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        losses = self.nonfinite_losses(trainer, outputs, getattr(pl_module, "step_logs", {}))
        self.nonfinite_batches = self.nonfinite_batches + 1 if losses else 0
        weights = nonfinite_tensors(pl_module, self.modules)
        if not weights and self.nonfinite_batches < self.patience:
            return
        message = self.message(trainer, pl_module, losses, weights)
        if self.action == "stop":
            raise TrainingDiverged(message)
        if not self._warned:
            log.warning("%s (callbacks.divergence.action=warn: training goes on.)", message)
            self._warned = True

    @staticmethod
    def nonfinite_losses(trainer: pl.Trainer, outputs, step_logs: dict[str, Tensor]) -> dict[str, float]:
        """The step's output loss and the losses logged this batch: ``step_logs`` of a genlab model holds them on
        batches Lightning does not write (:meth:`genlab.models.base.GenerativeModule.log`)."""
        values: dict[str, Tensor] = {}
        if isinstance(outputs, Tensor):
            values["loss"] = outputs
        elif isinstance(outputs, dict) and isinstance(outputs.get("loss"), Tensor):
            values["loss"] = outputs["loss"]
        # a genlab model holds every loss of the step in step_logs; reading callback_metrics (Lightning rebuilds it on
        # each access) is for other modules
        logged = step_logs if step_logs else trainer.callback_metrics
        values |= {k: v for k, v in logged.items() if "loss" in k and isinstance(v, Tensor) and v.numel() == 1}
        return {k: float(v) for k, v in values.items() if v.numel() == 1 and not math.isfinite(float(v))}

    def message(self, trainer: pl.Trainer, pl_module: pl.LightningModule, losses: dict[str, float], weights: list[str]) -> str:
        batch = batches_seen(trainer)
        what = []
        if losses:
            what.append(", ".join(f"{k} = {v}" for k, v in losses.items()))
        if weights:
            shown = ", ".join(weights[:3]) + (f" and {len(weights) - 3} more" if len(weights) > 3 else "")
            what.append(f"non-finite weights in {shown}")
        rates = sorted({group["lr"] for opt in trainer.optimizers for group in opt.param_groups})
        lr = f" (now {', '.join(f'{r:g}' for r in rates)})" if rates else ""
        if pl_module.automatic_optimization:  # likelihood models
            fixes = f"a lower learning rate{lr}, or gradient clipping (trainer.gradient_clip_val=1.0)"
        else:  # adversarial schemes: manual optimization of two players
            fixes = (
                f"a lower learning rate{lr} (model.optimizer.generator.lr / model.optimizer.discriminator.lr), a "
                "gradient penalty (model=wgan_gp, or +model/penalties=r1), more critic steps (model.n_critic), or a "
                "bounded loss (model=hinge_gan, lsgan)"
            )
        return (
            f"Training diverged at batch {batch} (epoch {trainer.current_epoch}, optimizer step {trainer.global_step}): "
            f"{'; '.join(what)}. Try {fixes}. Checkpoints keep the last finite weights (checkpoints/last.ckpt); "
            "resume from it with the fix, or start over. callbacks.divergence.action=warn lets a run go on."
        )
