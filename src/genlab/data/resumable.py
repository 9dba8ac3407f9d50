"""Training loaders that a killed run resumes exactly: the same batches, in the same order, from the batch it
stopped at, also across epoch boundaries.

Two things make that work, and plain ``DataLoader(shuffle=True)`` has neither:

* the shuffle of epoch ``e`` is a pure function of ``(seed, e)`` (:class:`EpochOrder`, as torch's
  ``DistributedSampler`` does with ``seed + epoch``), not the next draw of a generator that a checkpoint would have
  to hold; Lightning tells the sampler the epoch (``set_epoch``) before every epoch, also after a resume;
* the loader has ``state_dict()``/``load_state_dict()`` (:class:`ResumableLoader`), which Lightning saves with the
  fit loop (``loops.fit_loop.state_dict.combined_loader``) and reloads on a mid-epoch resume: the epoch and how many
  of its batches were handed out, so the resumed epoch skips exactly those (by index, without loading them). It
  serves any :class:`ResumableBatches`: the shuffled order here (:class:`EpochBatches`) and the semi-supervised
  batches of :mod:`genlab.data.labelled`.

The seed belongs to the datamodule (:class:`ResumableShuffle`): the run's ``seed=`` (the global RNG's initial seed;
rank 0's under DDP, so every rank shards one order), taken the first time a training loader is built, and saved in the
checkpoint with the datamodule's own state, so a resumed run keeps its data order even when it is started with another
``seed=``. It is not a draw from the global RNG, whose position there depends on the process count (Lightning's DDP
re-seeds it at fit start, one process does not): 2 processes x batch 8 see the order of 1 process x batch 16.

Exact with ``num_workers=0`` (the default of the embedded datasets), and with workers for data without random
augmentation: workers are seeded per epoch from ``(seed, epoch)``, so a mid-epoch resume restarts a worker's
augmentation stream at the epoch's start.
"""

from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler


def process_count() -> tuple[int, int]:
    """(world size, rank) of the DDP process group, (1, 0) without one. Lightning cannot swap in its
    DistributedSampler here (it cannot rebuild a ResumableLoader), so conf/trainer/ddp.yaml turns that off and the
    order shards itself."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


class EpochOrder(Sampler[int]):
    """Item indices of one epoch: a permutation seeded by ``seed + epoch`` (or 0..n-1 without shuffling), starting
    at :attr:`start` (the items a resumed epoch skips; reset once used)."""

    def __init__(self, num_items: int, shuffle: bool, seed: int):
        self.num_items, self.shuffle, self.seed = num_items, shuffle, seed
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.num_items // process_count()[0])  # this process's share under DDP

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = torch.randperm(self.num_items, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.num_items)
        world, rank = process_count()
        if world > 1:  # DDP (trainer=ddp): every world-th item of the one shared order, padded as DistributedSampler does
            order = torch.cat([order, order[: len(self) * world - self.num_items]])[rank::world]
        start, self.start = self.start, 0
        yield from order[start:].tolist()


class ResumableBatches(Protocol):
    """A batch sampler whose epoch is a pure function of ``(seed, epoch)`` and that can start an epoch at a batch."""

    seed: int
    epoch: int

    def set_epoch(self, epoch: int) -> None: ...

    def skip(self, batches: int) -> None:
        """The next iteration leaves out the epoch's first ``batches`` batches (once)."""


class EpochBatches(BatchSampler):
    """``BatchSampler`` over an :class:`EpochOrder` that forwards ``set_epoch``: Lightning calls it on a loader's
    ``sampler`` (where whole batches are indexed at once, ``batch_size=None``) or its ``batch_sampler.sampler``."""

    sampler: EpochOrder

    @property
    def seed(self) -> int:
        return self.sampler.seed

    @seed.setter
    def seed(self, seed: int) -> None:
        self.sampler.seed = seed

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def skip(self, batches: int) -> None:
        self.sampler.start = batches * self.batch_size


class ResumableLoader(DataLoader):
    """A ``DataLoader`` over :class:`ResumableBatches` whose position Lightning checkpoints (see the module docstring).

    ``whole_batches``: the dataset is indexed with a list of indices per batch (``TensorDataset``), which skips the
    per-item fetch and collate (``batch_size=None`` with the batches as ``sampler``); otherwise items are fetched
    one by one and collated as usual. Other kwargs go to ``DataLoader``.
    """

    def __init__(self, dataset: Dataset, batches: ResumableBatches, *, whole_batches: bool = False, **kwargs):
        self.batches = batches
        self.batches_done = 0  # batches of epoch ``_iterated_epoch`` handed to the training loop
        self._iterated_epoch = 0
        self._resume_at: tuple[int, int] | None = None  # (epoch, batches done) of a loaded state
        # the loader's own generator seeds the workers (DataLoader draws their base seed from it, else from the global
        # RNG); it is reseeded from (seed, epoch) every epoch
        generator = torch.Generator()
        if whole_batches:
            super().__init__(dataset, sampler=batches, batch_size=None, generator=generator, **kwargs)
        else:
            super().__init__(dataset, batch_sampler=batches, generator=generator, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        # A generator: the body runs at the first batch, after Lightning has set the epoch (it creates the iterator
        # of a resumed run before it calls set_epoch).
        epoch = self.batches.epoch
        skip = self._resume_at[1] if self._resume_at is not None and self._resume_at[0] == epoch else 0
        self._resume_at = None
        self.batches.skip(skip)
        self.generator.manual_seed(self.batches.seed + epoch)
        self._iterated_epoch, self.batches_done = epoch, skip
        for batch in super().__iter__():
            self.batches_done += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        # after set_epoch and before the epoch's first batch, none of it is done
        done = self.batches_done if self._iterated_epoch == self.batches.epoch else 0
        return {"seed": self.batches.seed, "epoch": self.batches.epoch, "batches_done": done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.batches.seed = int(state["seed"])
        self.batches.set_epoch(int(state["epoch"]))
        self._resume_at = (int(state["epoch"]), int(state["batches_done"]))


class ResumableShuffle:
    """What a datamodule adds to train on :class:`ResumableLoader`: its shuffle seed, taken once from the run's seed
    and checkpointed (``state_dict`` of a ``LightningDataModule`` goes into the checkpoint under the class name)."""

    shuffle_seed: int | None = None

    def resumable_loader(self, dataset: Dataset, batch_size: int, drop_last: bool, **kwargs) -> ResumableLoader:
        """A shuffled loader of ``dataset`` in batches of ``batch_size``; kwargs go to :class:`ResumableLoader`."""
        batches = EpochBatches(EpochOrder(len(dataset), True, self.run_shuffle_seed()), batch_size, drop_last)
        return ResumableLoader(dataset, batches, **kwargs)

    def run_shuffle_seed(self) -> int:
        """The shuffle seed, taken from the run's seed the first time it is asked for (see the module docstring)."""
        if self.shuffle_seed is None:
            seed = torch.initial_seed() % 2**31  # seed_everything(seed) sets it; without a seed= it differs per process
            trainer = getattr(self, "trainer", None)
            self.shuffle_seed = int(trainer.strategy.broadcast(seed) if trainer is not None else seed)
        return self.shuffle_seed

    def state_dict(self) -> dict[str, Any]:
        return {"shuffle_seed": self.shuffle_seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.shuffle_seed = state_dict.get("shuffle_seed")
