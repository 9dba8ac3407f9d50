"""The data contract: what every datamodule yields and the seeded conditions it hands to ``sample()``.

One :class:`Batch` type for every model:

* ``images``: always what the model should *produce* (the digits of MNIST, the B side of a translation pair, the
  2-D points of a toy mixture), so reference features, held-out images and held-out NLL have one reading;
* ``labels``: class ids (N,) or attribute vectors (N, A), ``None`` where the dataset has none. Partially labelled
  data (``data.labels_per_class``, the semi-supervised protocol of :mod:`genlab.data.labelled`) marks the items whose
  label is withheld with -1 inside a labelled batch (class-conditional schemes refuse -1 as a class id);
* ``source``: the *input* of a translation (the A side), ``None`` for generation.

Datasets keep torch's per-item tuples; a datamodule's :meth:`~ConditionSource.collate` is the one place they
become a ``Batch``. Lightning moves the dataclass to the device field by field.

Conditions come from the data: a conditional model names what it is conditioned on (``model.conditioning``:
``None``, ``"labels"`` or ``"source"``) and :func:`conditions_for` asks the datamodule for a fixed, seeded set of
them. Grids, metrics and ``eval.py`` pass those to ``sample(n, condition=...)``, so a conditional model or a
translator is pictured and scored by the callbacks unconditional models use.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

CONDITIONINGS = (None, "labels", "source")


@dataclass
class Batch:
    images: Tensor
    labels: Tensor | None = None
    source: Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> "Batch":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Batch(move(self.images), move(self.labels), move(self.source))

    def __getitem__(self, index) -> "Batch":
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        return Batch(pick(self.images), pick(self.labels), pick(self.source))

    @staticmethod
    def cat(batches: Sequence["Batch"]) -> "Batch":
        def join(field: str) -> Tensor | None:
            parts = [getattr(b, field) for b in batches]
            return None if any(p is None for p in parts) else torch.cat(parts)

        return Batch(join("images"), join("labels"), join("source"))


def items_to_batch(items, labelled: bool) -> Batch:
    """Collated dataset items -> Batch. Items are ``(image, label)`` or ``(image, label, source)``; the labels are
    dropped (``None``) when the dataset has no classes (``labelled=False``), never silently kept as -1."""
    fields = list(items)
    if len(fields) not in (2, 3):
        raise TypeError(f"dataset items must be (image, label) or (image, label, source), got {len(fields)} fields.")
    images, labels = fields[0], fields[1]
    source = fields[2] if len(fields) == 3 else None
    return Batch(images, torch.as_tensor(labels) if labelled else None, source)


class CollateBatch:
    """A DataLoader ``collate_fn``: torch's default collation, then :func:`items_to_batch`. A small object rather
    than a bound datamodule method, so DataLoader workers started by spawn (macOS, Windows) pickle two fields, not
    the datamodule with its datasets and trainer."""

    def __init__(self, labelled: bool, batched: bool = False):
        self.labelled = labelled
        self.batched = batched  # the sampler indexes whole batches: the item already is one collated batch

    def __call__(self, items) -> Batch:
        return items_to_batch(items if self.batched else default_collate(items), self.labelled)


class ConditionSource:
    """Mixin for datamodules: :meth:`collate` (items -> Batch) and :meth:`conditions` (seeded conditions).

    Needs ``num_classes`` and ``train_set`` / ``val_set`` (after ``setup``).
    """

    num_classes: int
    train_set: Dataset | None
    val_set: Dataset | None

    @property
    def collate(self) -> CollateBatch:
        return CollateBatch(labelled=self.num_classes > 0)

    def batch_of(self, dataset: Dataset, indices: Sequence[int]) -> Batch:
        """The items ``indices`` of ``dataset`` as one Batch (no loader, no shuffling)."""
        return self.collate([dataset[i] for i in indices])

    def conditions(self, n: int, conditioning: str | None, seed: int = 0) -> Tensor | None:
        """``n`` fixed conditions for ``sample(n, condition=...)``, the same for the same seed.

        ``"labels"``: the labels of ``n`` seeded draws from the training split, so generated samples follow the
        data's class distribution (what FID against the training set assumes); ``"source"``: the source images of
        ``n`` seeded draws from the held-out split (translations of images the model never trained on).
        """
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {conditioning!r}.")
        if conditioning is None:
            return None
        if conditioning == "labels" and self.num_classes <= 0:
            raise ValueError(
                f"the model is conditioned on labels but {type(self).__name__} has none (data.num_classes=0); "
                "pick labelled data (mnist5k, mnist, cifar10, ...) or an unconditional model."
            )
        dataset = self._split_for(conditioning)
        generator = torch.Generator().manual_seed(seed)
        indices = torch.randint(len(dataset), (n,), generator=generator).tolist()
        batch = self.batch_of(dataset, indices)
        value = batch.labels if conditioning == "labels" else batch.source
        if value is None:
            raise ValueError(
                f"the model is conditioned on {conditioning} but the batches of {type(self).__name__} carry none; "
                "pick data that provides them (translation data for source images, labelled data for labels)."
            )
        return value

    def _split_for(self, conditioning: str) -> Dataset:
        if self.train_set is None:
            self.setup("fit")
        held_out = self.val_set is not None and len(self.val_set) > 0
        if conditioning == "source" and held_out:
            return self.val_set
        return self.train_set


def conditions_for(model, datamodule, n: int, seed: int = 0) -> Tensor | None:
    """The seeded conditions ``model`` samples from (``None`` for unconditional models): the one call grids,
    metrics and ``eval.py`` make before ``sample(n, condition=...)``."""
    conditioning = getattr(model, "conditioning", None)
    if conditioning is None:
        return None
    if datamodule is None or not callable(getattr(datamodule, "conditions", None)):
        raise ValueError(
            f"{type(model).__name__} is conditioned on {conditioning}: sampling it for grids or metrics needs a "
            "datamodule with conditions(n, conditioning, seed) (every genlab datamodule has one)."
        )
    return datamodule.conditions(n, conditioning, seed)
