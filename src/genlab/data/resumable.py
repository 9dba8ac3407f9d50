"""Training loaders that a killed run resumes exactly: the same batches, in the same order, from the batch it
stopped at, also across epoch boundaries.

Two things make that work, and plain ``DataLoader(shuffle=True)`` has neither:

* the shuffle of epoch ``e`` is a pure function of ``(seed, e)`` (:class:`EpochOrder`, as torch's
  ``DistributedSampler`` does with ``seed + epoch``), not the next draw of a generator that a checkpoint would have
  to hold; Lightning tells the sampler the epoch (``set_epoch``) before every epoch, also after a resume;
* the loader has ``state_dict()``/``load_state_dict()`` (:class:`ResumableLoader`), which Lightning saves with the
  fit loop (``loops.fit_loop.state_dict.combined_loader``) and reloads on a mid-epoch resume: the epoch and how many
  of its batches were handed out, so the resumed epoch skips exactly those (by index, without loading them).

The seed belongs to the datamodule (:class:`ResumableShuffle`): drawn from the global RNG the first time a training
loader is built (``seed=`` of the run fixes it), and saved in the checkpoint with the datamodule's own state, so a
resumed run keeps its data order even when it is started with another ``seed=``.

Exact with ``num_workers=0`` (the default of the embedded datasets), and with workers for data without random
augmentation: workers are seeded per epoch from ``(seed, epoch)``, so a mid-epoch resume restarts a worker's
augmentation stream at the epoch's start.
"""

from collections.abc import Iterator
from typing import Any

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


class EpochBatches(BatchSampler):
    """``BatchSampler`` over an :class:`EpochOrder` that forwards ``set_epoch``: Lightning calls it on a loader's
    ``sampler`` (where whole batches are indexed at once, ``batch_size=None``) or its ``batch_sampler.sampler``."""

    sampler: EpochOrder

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)


class ResumableLoader(DataLoader):
    """A shuffling ``DataLoader`` whose position Lightning checkpoints (see the module docstring).

    ``whole_batches``: the dataset is indexed with a list of indices per batch (``TensorDataset``), which skips the
    per-item fetch and collate (``batch_size=None`` with a batch sampler as ``sampler``); otherwise items are fetched
    one by one and collated as usual. Other kwargs go to ``DataLoader``.
    """

    def __init__(
        self, dataset: Dataset, batch_size: int, *, shuffle: bool, drop_last: bool, seed: int, whole_batches: bool = False, **kwargs
    ):
        self.order = EpochOrder(len(dataset), shuffle, seed)
        self.batches_done = 0  # batches of epoch ``_iterated_epoch`` handed to the training loop
        self._iterated_epoch = 0
        self._resume_at: tuple[int, int] | None = None  # (epoch, batches done) of a loaded state
        batches = EpochBatches(self.order, batch_size, drop_last)
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
        epoch = self.order.epoch
        skip = self._resume_at[1] if self._resume_at is not None and self._resume_at[0] == epoch else 0
        self._resume_at = None
        self.order.start = skip * self.batch_sampler_size
        self.generator.manual_seed(self.order.seed + epoch)
        self._iterated_epoch, self.batches_done = epoch, skip
        for batch in super().__iter__():
            self.batches_done += 1
            yield batch

    @property
    def batch_sampler_size(self) -> int:
        return (self.batch_sampler or self.sampler).batch_size

    def state_dict(self) -> dict[str, int]:
        # after set_epoch and before the epoch's first batch, none of it is done
        done = self.batches_done if self._iterated_epoch == self.order.epoch else 0
        return {"seed": self.order.seed, "epoch": self.order.epoch, "batches_done": done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.order.seed = int(state["seed"])
        self.order.set_epoch(int(state["epoch"]))
        self._resume_at = (int(state["epoch"]), int(state["batches_done"]))


class ResumableShuffle:
    """What a datamodule adds to train on :class:`ResumableLoader`: its shuffle seed, drawn once and checkpointed
    (``state_dict`` of a ``LightningDataModule`` goes into the checkpoint under the class name)."""

    shuffle_seed: int | None = None

    def resumable_loader(self, dataset: Dataset, batch_size: int, **kwargs) -> ResumableLoader:
        if self.shuffle_seed is None:
            self.shuffle_seed = int(torch.randint(2**31, (1,)))
        return ResumableLoader(dataset, batch_size, shuffle=True, seed=self.shuffle_seed, **kwargs)

    def state_dict(self) -> dict[str, Any]:
        return {"shuffle_seed": self.shuffle_seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.shuffle_seed = state_dict.get("shuffle_seed")
