"""The one sampling contract every generative model implements, and what conditional models share.

Callbacks (sample grids, GIFs) and metrics only ever call :meth:`GenerativeModule.sample`, with the conditions the
datamodule hands out for the model's ``conditioning`` (see :mod:`genlab.data.batch`), so any model composes with
any of them without type checks.
"""

import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from genlab.checkpoints import own_rank, per_rank

#: checkpoint key of the module's random stream (a uint8 tensor: loads with torch.load(weights_only=True))
RNG_STATE_KEY = "genlab_rng_state"
RNG_STATES_BY_RANK_KEY = "genlab_rng_states_by_rank"  # DDP: (world size, state) of every process


class GenerativeModule(pl.LightningModule):
    """Base class: ``sample(n, *, condition=None, generator=None) -> Tensor[n, C, H, W]`` in [-1, 1].

    ``conditioning`` names what ``condition`` is: ``None`` (unconditional; a condition is refused, unless the model
    documents what it fixes, as InfoGAN does for its unsupervised categorical code), ``"labels"``
    (class ids or attribute vectors) or ``"source"`` (the images a translator maps). Training-time random draws
    (latents, posterior noise) come from :attr:`rng`, a generator owned by the module, seeded from the global RNG
    when the module is built (so ``seed=...`` still fixes a run) and saved in checkpoints.
    """

    conditioning: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.rng = torch.Generator().manual_seed(int(torch.randint(2**62, (1,))))
        self._rng_restored_per_rank = False  # a DDP resume restored each rank's own stream: no fork at train start
        #: the values this batch's training step logged; the divergence guard checks them every batch
        self.step_logs: dict[str, Tensor] = {}
        self._step_log_options: dict[str, dict[str, Any]] = {}

    def log(self, name: str, value: Any, **kwargs: Any) -> None:
        """Lightning's ``log``, except that a training step's per-batch values are held until the batch ends and
        handed to Lightning only on the batches it writes to the loggers (every ``trainer.log_every_n_steps``, and
        when training stops). Lightning's bookkeeping costs about 0.5 ms per value and call, as much as a toy model's
        whole step; the loggers get the same values at the same steps. The progress bar and the metrics ``train()``
        returns show the last written batch's values."""
        per_batch = kwargs.get("on_step") is not False and not kwargs.get("on_epoch")
        if self._current_fx_name == "training_step" and per_batch and self._trainer is not None:
            self.step_logs[name] = value.detach() if isinstance(value, Tensor) else value
            self._step_log_options[name] = kwargs
            return
        super().log(name, value, **kwargs)

    def scheduled(self, optimizers: list, schedule) -> list | tuple[list, list]:
        """``optimizers`` for ``configure_optimizers``, with one LR schedule each when ``schedule`` (a constructor
        missing the optimizer, e.g. :func:`genlab.schedules.linear_decay`) is given."""
        return optimizers if schedule is None else (optimizers, [schedule(optimizer) for optimizer in optimizers])

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Under manual optimization Lightning steps no LR schedule. A per-batch one is brought to the number of
        # batches done *before* each batch, not stepped after it: checkpoints are written in the callbacks'
        # on_train_batch_end, before the module's, so stepping there would save a schedule one batch behind the
        # weights and a resumed run would repeat that batch's lr.
        if self.automatic_optimization:
            return
        done = self.trainer.fit_loop.epoch_loop.total_batch_idx  # this batch's index in the whole run
        with warnings.catch_warnings():
            # a player that steps every n_critic-th batch has not stepped yet at batch 1; torch warns that the
            # schedule's first value is skipped, which does not hold for the closed-form LambdaLR schedules here
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            for config in self.trainer.lr_scheduler_configs:
                while config.interval == "step" and config.scheduler.last_epoch < done:
                    config.scheduler.step()

    def on_train_epoch_end(self) -> None:
        # per-epoch schedules under manual optimization (pix2pix/CycleGAN's linear policy: the official code's
        # update_learning_rate once per epoch)
        if self.automatic_optimization:
            return
        for config in self.trainer.lr_scheduler_configs:
            if config.interval == "epoch":
                config.scheduler.step()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # after the callbacks' on_train_batch_end (a stop they request makes this batch a written one), before
        # Lightning reads the logged values
        held, options = self.step_logs, self._step_log_options
        self.step_logs, self._step_log_options = {}, {}
        # also an epoch's last batch: what train() returns and the bar shows is then the run's last batch even when
        # it was not a logging step (Lightning writes the loggers only on logging steps either way)
        last_of_epoch = batch_idx + 1 >= self.trainer.num_training_batches
        if held and (self.trainer._logger_connector.should_update_logs or self.trainer.fast_dev_run or last_of_epoch):
            caller, self._current_fx_name = self._current_fx_name, "training_step"
            try:
                for name, value in held.items():
                    super().log(name, value, **options[name])
            finally:
                self._current_fx_name = caller

    def sample(self, n: int, *, condition: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` samples. ``generator`` seeds all randomness, so equal seeds give equal samples on any device."""
        raise NotImplementedError

    def randn(self, *shape: int, generator: torch.Generator | None = None) -> Tensor:
        """Standard normal noise on this module's device, from ``generator`` or else the module's own stream.
        Drawn on the CPU, so a seed means the same noise whatever the accelerator."""
        return torch.randn(*shape, generator=generator or self.rng).to(self.device)

    def manual_step(self, optimizer, loss: Tensor) -> None:
        """One step of a manually optimised scheme (adversarial, translation): clear the gradients, backward through
        Lightning (precision plugins, DDP), step."""
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[RNG_STATE_KEY] = self.rng.get_state()
        by_rank = per_rank(self.trainer, self.rng.get_state())  # DDP: each rank resumes its own stream
        if by_rank is not None:
            checkpoint[RNG_STATES_BY_RANK_KEY] = by_rank

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = own_rank(checkpoint.get(RNG_STATES_BY_RANK_KEY), self._trainer)  # eval.py loads without a trainer
        self._rng_restored_per_rank = state is not None
        if state is not None:
            self.rng.set_state(state)
        elif RNG_STATE_KEY in checkpoint:
            self.rng.set_state(checkpoint[RNG_STATE_KEY])

    def on_train_start(self) -> None:
        # DDP: every process seeded (or restored from a one-process checkpoint) the same stream; from here on each
        # draws its own noise, or the global batch would repeat one set of latents world_size times
        if self.trainer.world_size > 1 and self.global_rank > 0 and not self._rng_restored_per_rank:
            self.rng.manual_seed(int(torch.randint(2**62, (1,), generator=self.rng)) + self.global_rank)


class LabelConditioning:
    """What class-conditional schemes (CVAE, conditional PixelCNN, conditional GANs) share: one check of the
    ``conditional`` / ``num_classes`` settings, one check of labels, and one default for sampling without labels.

    Call :meth:`init_conditioning` from ``__init__``; ``conditioning`` is ``"labels"`` exactly when conditional.
    """

    conditional: bool
    num_classes: int

    def init_conditioning(self, conditional: bool, num_classes: int) -> None:
        if conditional and num_classes < 2:
            raise ValueError(
                f"{type(self).__name__} with conditional=true needs labelled data (data.num_classes >= 2), got "
                f"num_classes={num_classes}; use the unconditional preset (model.conditional=false) for this dataset."
            )
        self.conditional = conditional
        self.num_classes = num_classes if conditional else 0

    @property
    def conditioning(self) -> str | None:
        return "labels" if self.conditional else None

    def check_labels(self, labels: Tensor | None) -> Tensor | None:
        """Labels (int64, on the module's device) for a conditional model, ``None`` for an unconditional one.
        Class ids only: one integer per sample, in 0..num_classes-1; anything else is refused with what it was."""
        if not self.conditional:
            return None
        wrong = _label_problem(labels, self.num_classes)
        if wrong:
            raise ValueError(
                f"{type(self).__name__} is class-conditional: it needs labels in 0..{self.num_classes - 1} (integer "
                f"class ids, shape (N,)), {wrong} (batches of labelled data, or sample(n, condition=labels))."
            )
        return labels.to(self.device, torch.long)

    def sampling_labels(self, n: int, condition: Tensor | None) -> Tensor | None:
        """``condition`` checked, or every class in turn (one class per grid column) when none is given;
        an unconditional model refuses a condition."""
        if not self.conditional:
            reject_condition(self, condition)
            return None
        return self._sampling_condition(n, torch.arange(n) % self.num_classes if condition is None else condition)

    def uniform_labels(self, n: int, condition: Tensor | None, generator: torch.Generator) -> Tensor | None:
        """``condition`` checked, or ``n`` labels drawn uniformly from ``generator`` when none is given (conditional
        GANs: every class equally likely, as in a balanced dataset, and fixed by a seeded generator); an unconditional
        model refuses a condition."""
        if not self.conditional:
            reject_condition(self, condition)
            return None
        if condition is None:
            condition = torch.randint(self.num_classes, (n,), generator=generator)
        return self._sampling_condition(n, condition)

    def _sampling_condition(self, n: int, condition: Tensor) -> Tensor:
        if not isinstance(condition, Tensor) or condition.dim() != 1 or len(condition) != n:
            shape = tuple(condition.shape) if isinstance(condition, Tensor) else type(condition).__name__
            raise ValueError(
                f"sample(n={n}, condition=...) needs labels in 0..{self.num_classes - 1}, one class id per sample "
                f"(shape ({n},)), got {shape}."
            )
        return self.check_labels(condition)


def _label_problem(labels, num_classes: int) -> str | None:
    """What is wrong with ``labels`` as class ids in 0..num_classes-1, or ``None``."""
    if labels is None:
        return "none were given"
    if not isinstance(labels, Tensor):
        return f"got a {type(labels).__name__}"
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        return f"got dtype {labels.dtype}"
    if labels.dim() != 1:
        return f"got shape {tuple(labels.shape)}"
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        return f"got values {int(labels.min())}..{int(labels.max())}"
    return None


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


def reject_condition(model: nn.Module, condition: Tensor | None) -> None:
    if condition is not None:
        raise ValueError(
            f"{type(model).__name__} is unconditional and cannot sample from a condition; "
            "pick a conditional model or call sample(n) without condition=."
        )
