"""Checkpoints a killed run resumes from exactly, and a stop on SIGTERM/Ctrl-C that saves one within seconds.

Cadence: every ``every_n_batches`` training batches (batches, not Lightning's optimizer steps: a GAN takes two per
batch), optionally every ``every_n_epochs`` epochs, and at the end. A save due at an epoch's last batch waits for the
end of that epoch's validation, so a resume neither repeats nor skips it. Each save writes ``batch_<N>.ckpt`` (unique:
nothing is overwritten) and copies it to ``last.ckpt``; both are written to a temporary file and renamed
(:class:`genlab.checkpoints.AtomicCheckpointIO`), so a kill during a save leaves the previous ``last.ckpt`` whole.
Non-finite weights are never saved (:mod:`genlab.callbacks.divergence` stops such a run).

What a checkpoint holds beyond Lightning's (weights, optimizers, loop position, the loader position of
:mod:`genlab.data.resumable`, the module's own RNG): the global RNG states (torch, numpy, python; dropout and
augmentation draw from them), restored when the resumed run starts training, and under ``"genlab"`` which model
wrote it and the W&B run id, so a resume continues the same W&B run.

Signals: SIGTERM (a scheduler's preemption) and the first Ctrl-C (SIGINT) ask for a stop. During a training step
the step is finished first, so the saved state is one a resume continues bit for bit; the checkpoint is written at
that batch's end (at an epoch's last batch: before that epoch's validation, which the resumed run then skips) and the
run exits with 128 + the signal number (143, 130), as schedulers expect. Outside a step
(sample metrics, held-out likelihood, end-of-fit work) the run stops at once: that work is skipped. A second Ctrl-C
stops immediately without a checkpoint. Lightning's own SIGTERM handling (and SLURM's SIGUSR1 requeue) stays in
place: its handler still runs first.
"""

import logging
import random
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Checkpoint
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from genlab.callbacks.divergence import TrainingDiverged, nonfinite_tensors
from genlab.callbacks.periodic import batches_seen
from genlab.checkpoints import GENLAB_KEY, atomic_copy, own_rank, per_rank

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(SIGTERMException):
    """The run was stopped by a signal; ``code`` (the exit status) is 128 + its number, as a shell reports it."""

    def __init__(self, signum: int, saved: bool):
        super().__init__(128 + signum)
        self.signum = signum
        self.saved = saved


def global_rng_state() -> dict[str, Any]:
    """The global random states as tensors and plain numbers (``torch.load(weights_only=True)`` reads them)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"], numpy["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RunCheckpoints(Checkpoint):
    """See the module docstring. ``every_n_batches``/``every_n_epochs``: ``None`` turns that trigger off (a final
    checkpoint and one on interrupt are always written). ``model_preset`` (set by ``genlab.run.train``) is recorded
    in each checkpoint, so a resume with another model can say which one wrote it."""

    def __init__(self, dirpath: str | Path, every_n_batches: int | None = 500, every_n_epochs: int | None = None):
        for name, value in (("every_n_batches", every_n_batches), ("every_n_epochs", every_n_epochs)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"callbacks.model_checkpoint.{name} must be a positive integer or null, got {value!r}.")
        self.dirpath = Path(dirpath)
        self.every_n_batches = every_n_batches
        self.every_n_epochs = every_n_epochs
        self.model_preset: str | None = None
        self.last_saved_batch: int | None = None
        self.stop_signal: int | None = None
        self._save_at_epoch_end = False
        self._rng_to_restore: dict[str, Any] | None = None
        self._torch_rng_by_rank: torch.Tensor | None = None
        self._previous_handlers: dict[int, Any] = {}
        self._trainer: pl.Trainer | None = None

    # -- cadence ----------------------------------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # the last hook before the first batch of a resumed run: the global streams continue from the checkpoint
        if self._rng_to_restore is not None:
            set_global_rng_state(self._rng_to_restore)
            self._rng_to_restore = None
        state, self._torch_rng_by_rank = own_rank(self._torch_rng_by_rank, trainer), None
        if state is not None:
            torch.set_rng_state(state)
        self._install_signal_handlers(trainer)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        if self.stop_signal is not None:  # a signal came during this batch's step: save here, then stop
            self.save(trainer, pl_module)
            raise Interrupted(self.stop_signal, saved=True)
        # A run that stops mid-epoch (max_batches, max_steps) is saved here, mid-epoch as it is: at on_train_end Lightning
        # has already counted the epoch as finished, and a resume would skip the rest of it.
        stopping = trainer.should_stop or 0 <= trainer.max_steps <= trainer.global_step
        if stopping or (self.every_n_batches and batches_seen(trainer) % self.every_n_batches == 0):
            if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
                # The epoch's validation (held-out NLL, early stopping, the best checkpoint) comes after this hook, and
                # Lightning resumes from a checkpoint of an epoch's last batch into the next epoch without running it:
                # save after it, at the epoch's end, where Lightning's own checkpoints are written.
                self._save_at_epoch_end = True
            else:
                self.save(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        every_n_epochs = self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        if self._save_at_epoch_end or every_n_epochs:
            self._save_at_epoch_end = False
            self.save(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer, pl_module)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self._trainer is None or isinstance(exception, KeyboardInterrupt) or (isinstance(exception, Interrupted) and exception.saved):
            return  # before training started (setup, restoring a checkpoint) there is nothing new; a 2nd Ctrl-C: out now
        if isinstance(exception, TrainingDiverged):
            log.error("Not saving the diverged weights; %s", self._resume_hint())
            return
        if self._in_training_step(trainer):
            # half a step done (one player updated, the other not): keep it for inspection, never as last.ckpt
            path = self.save(trainer, pl_module, name=f"exception_batch_{batches_seen(trainer):07d}.ckpt", as_last=False)
            if path is not None:
                log.error("Saved the weights at the error, mid-step, to %s; %s", path, self._resume_hint())
            return
        self.save(trainer, pl_module)

    def save(self, trainer: pl.Trainer, pl_module: pl.LightningModule, name: str | None = None, as_last: bool = True) -> Path | None:
        """Write ``batch_<N>.ckpt`` (or ``name``) and, with ``as_last``, copy it to ``last.ckpt``; once per batch."""
        batch = batches_seen(trainer)
        if trainer.sanity_checking or trainer.fast_dev_run or (as_last and self.last_saved_batch == batch):
            return None  # fast_dev_run (debug=fast_dev_run) is a smoke test: Lightning's own checkpointing skips it too
        bad = nonfinite_tensors(pl_module)
        if bad:
            log.error("Not saving a checkpoint at batch %d: non-finite weights in %s; %s", batch, ", ".join(bad[:3]), self._resume_hint())
            return None
        path = self.dirpath / (name or f"batch_{batch:07d}.ckpt")
        previous = self.last_saved_batch
        if as_last:
            self.last_saved_batch = batch  # before the save: the checkpoint's own state_dict names itself
        try:
            trainer.save_checkpoint(path, weights_only=False)  # atomic: genlab.checkpoints.AtomicCheckpointIO
            if as_last and trainer.is_global_zero:
                atomic_copy(path, self.dirpath / "last.ckpt")
        except BaseException:
            self.last_saved_batch = previous
            raise
        return path

    def _resume_hint(self) -> str:
        if self.last_saved_batch is None:
            return "no checkpoint of this run was written yet."
        return f"the last good checkpoint is {self.dirpath / 'last.ckpt'} (batch {self.last_saved_batch})."

    # -- what a checkpoint holds ------------------------------------------------------------------------------------
    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        model = type(pl_module)
        wandb_ids = [logger.version for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        checkpoint[GENLAB_KEY] = {
            "model_class": f"{model.__module__}.{model.__qualname__}",
            "model_preset": self.model_preset,
            "batches": batches_seen(trainer),
            "wandb_run_id": wandb_ids[0] if wandb_ids and wandb_ids[0] else None,
        }

    def state_dict(self) -> dict[str, Any]:
        state = {"global_rng": global_rng_state(), "last_saved_batch": self.last_saved_batch}
        by_rank = per_rank(self._trainer, torch.get_rng_state()) if self._trainer is not None else None
        if by_rank is not None:  # DDP: each rank's torch stream (dropout), so every rank resumes its own
            state["torch_rng_by_rank"] = by_rank
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._rng_to_restore = state_dict.get("global_rng")
        self._torch_rng_by_rank = state_dict.get("torch_rng_by_rank")
        self.last_saved_batch = state_dict.get("last_saved_batch")

    # -- signals ----------------------------------------------------------------------------------------------------
    def _install_signal_handlers(self, trainer: pl.Trainer) -> None:
        """Called after Lightning registered its own (``Trainer._run``), which it restores at teardown."""
        if signal.getsignal(signal.SIGTERM) == self._on_signal:
            return
        self._trainer = trainer
        for signum in STOP_SIGNALS:
            try:
                self._previous_handlers[signum] = signal.getsignal(signum)
                signal.signal(signum, self._on_signal)
            except ValueError:  # not the main thread: signals are the launcher's business
                return

    def _on_signal(self, signum: int, frame) -> None:
        previous = self._previous_handlers.get(signum)
        if signum == signal.SIGTERM and callable(previous):
            previous(signum, frame)  # Lightning's: sets trainer.received_sigterm, stops DDP children
        if signum == signal.SIGINT and self.stop_signal is not None:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without a checkpoint
        self.stop_signal = signum
        trainer = self._trainer
        log.warning("Received %s: stopping%s.", signal.Signals(signum).name, " after this batch" if self._in_training_step(trainer) else "")
        if trainer is not None and not self._in_training_step(trainer) and not self._between_batches(trainer):
            raise Interrupted(signum, saved=False)  # batch-end or epoch-end work: skip it; on_exception saves

    @staticmethod
    def _in_training_step(trainer: pl.Trainer | None) -> bool:
        """A batch was fetched and its step has not finished: the weights may be half updated."""
        if trainer is None:
            return False
        progress = trainer.fit_loop.epoch_loop.batch_progress.total
        return progress.ready > progress.processed

    @staticmethod
    def _between_batches(trainer: pl.Trainer) -> bool:
        """After a batch's end hooks and before the next batch, inside an epoch: a moment in which a checkpoint's loop
        counters are not the ones a batch-end checkpoint has; the stop waits for the next batch's end."""
        batch = trainer.fit_loop.epoch_loop.batch_progress.total
        epoch = trainer.fit_loop.epoch_progress.total
        return batch.completed == batch.processed and epoch.started > epoch.processed
