"""Partially labelled training data, the semi-supervised protocol of Salimans et al. 2016 (Sec. 5; code
openai/improved-gan): keep the labels of ``labels_per_class`` seeded training items per class, treat the whole
training split as unlabelled, and show the classifier the labelled items in every batch.

``data.labels_per_class=N`` on any labelled image datamodule (:class:`~genlab.data.base.ImageDataModule`) turns it
on; the held-out split keeps all its labels (it is what the classifier is scored on). Each training batch is then
``batch_size`` items of the whole training split with label -1 followed by ``batch_size`` items of the labelled
subset (cycled, reshuffled each cycle) with their labels: 100 + 100 in the paper. With 100 labels among thousands of
images, plain shuffling would put one or two labelled images in a batch and the supervised term would see each label
a few times per run instead of in every step.

The labelled items repeat, so a scheme that is not semi-supervised would see those few digits over-represented:
only schemes that split a batch by its -1 marks (``model=ssgan``) should train on it.
"""

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler, Subset, TensorDataset

UNLABELLED = -1


def item_labels(dataset: Dataset) -> Tensor:
    """The label of every item (N,) int64, read from the label tensor or ``targets`` where the dataset has one
    (no image is decoded), else item by item."""
    if isinstance(dataset, Subset):
        return item_labels(dataset.dataset)[torch.as_tensor(dataset.indices, dtype=torch.long)]
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1].long()
    if hasattr(dataset, "targets"):
        return torch.as_tensor(dataset.targets).long()
    return torch.as_tensor([int(dataset[i][1]) for i in range(len(dataset))], dtype=torch.long)


def labelled_subset(labels: Tensor, per_class: int, num_classes: int, seed: int, where: str) -> Tensor:
    """Indices of ``per_class`` items of each class, chosen by ``seed`` (the same subset in every run and every
    model, so a semi-supervised GAN and a supervised baseline see the same labels). ``where`` names the data in
    the error raised when a class has fewer items than asked."""
    counts = torch.bincount(labels[labels >= 0], minlength=num_classes)
    short = {c: int(counts[c]) for c in range(num_classes) if counts[c] < per_class}
    if short:
        raise ValueError(
            f"data.labels_per_class={per_class} asks for {per_class} labelled training items per class, but the "
            f"training split of {where} has fewer in classes {short} (class: items); lower data.labels_per_class to "
            f"at most {int(counts.min())} or use larger data (e.g. data=mnist)."
        )
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(num_classes):
        members = torch.nonzero(labels == c).squeeze(1)
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


class SemiSupervisedItems(Dataset):
    """Items 0..N-1: the training split with every label replaced by -1; items N..N+L-1: the labelled subset with
    its labels. Labels are int64 tensors in both parts, so one batch can mix them."""

    def __init__(self, dataset: Dataset, labelled: Tensor):
        self.dataset = dataset
        self.labelled = labelled.tolist()

    def __len__(self) -> int:
        return len(self.dataset) + len(self.labelled)

    def __getitem__(self, index: int):
        unlabelled = index < len(self.dataset)
        item = list(self.dataset[index if unlabelled else self.labelled[index - len(self.dataset)]])
        item[1] = torch.tensor(UNLABELLED if unlabelled else int(item[1]), dtype=torch.long)
        return tuple(item)


class SemiSupervisedBatches(Sampler[list[int]]):
    """Batches of :class:`SemiSupervisedItems` indices: ``batch_size`` from a fresh permutation of the N unlabelled
    items, then ``batch_size`` labelled items cycling through permutations of the L labelled ones. An epoch is one
    pass over the unlabelled items (the last incomplete batch dropped, unless there is only one). Epoch ``e`` is a
    pure function of ``seed + e``, so a killed run resumes it exactly (:class:`genlab.data.resumable.ResumableLoader`)."""

    def __init__(self, num_items: int, num_labelled: int, batch_size: int, seed: int):
        self.num_items, self.num_labelled, self.batch_size, self.seed = num_items, num_labelled, batch_size, seed
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip(self, batches: int) -> None:
        self._skip = batches

    def __len__(self) -> int:
        return max(1, self.num_items // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.num_items, generator=generator)
        skip, self._skip = self._skip, 0
        labelled: list[int] = []
        for batch, start in enumerate(range(0, len(self) * self.batch_size, self.batch_size)):
            while len(labelled) < self.batch_size:  # the labelled cycle is drawn for skipped batches too
                labelled += (self.num_items + torch.randperm(self.num_labelled, generator=generator)).tolist()
            if batch >= skip:
                yield order[start : start + self.batch_size].tolist() + labelled[: self.batch_size]
            labelled = labelled[self.batch_size :]
