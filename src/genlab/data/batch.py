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
``None``, ``"labels"``, ``"source"`` or ``"domain_transfer"``) and :func:`conditions_for` asks the datamodule for a
fixed, seeded set of them. Grids, metrics and ``eval.py`` pass those to ``sample(n, condition=...)``, so a
conditional model or a translator is pictured and scored by the callbacks unconditional models use.

``"domain_transfer"`` (StarGAN: one generator, many domains) conditions on *two* things, the source images and the
domain each is to be translated to, so its condition is a :class:`DomainTransfer` rather than a tensor. It supports
what callbacks do with conditions (``len``, slicing, ``.to(device)``) and names its parts, so nothing has to guess
which tensor is which; :func:`single_domain_changes` is StarGAN's ``create_labels`` (the targets of its grids).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

CONDITIONINGS = (None, "labels", "source", "domain_transfer")
#: CelebA's hair colours: StarGAN's ``create_labels`` keeps them exclusive (one set, the others cleared)
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")


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


@dataclass
class DomainTransfer:
    """The condition of a multi-domain translator: translate ``source[i]`` into domain ``target[i]``.

    * ``source``: images (N, C, H, W) in [-1, 1];
    * ``target``: domain ids (N,) int64, or attribute vectors (N, A) float 0/1 (CelebA), as the data's labels are;
    * ``source_domains``: the sources' own domains, same form as ``target``, where known (the datamodule knows them
      for its held-out images). StarGAN's attribute grids need them: each row changes one attribute of the source's
      own vector (``create_labels(c_org)``). ``None`` when the caller does not know them.

    A dataclass rather than a :class:`Batch`: a Batch's ``images`` are what the model should *produce*, here they are
    its input. Like a Batch it has ``len``, slicing (``[a:b]``, index tensors) and ``.to(device)``: all grids and metrics do
    with a condition before handing it to ``sample(n, condition=...)``.
    """

    source: Tensor
    target: Tensor
    source_domains: Tensor | None = None

    def __post_init__(self) -> None:
        counts = {"sources": len(self.source), "targets": len(self.target)}
        if self.source_domains is not None:
            counts["source domains"] = len(self.source_domains)
        if len(set(counts.values())) != 1:
            raise ValueError(
                "DomainTransfer needs one target (and source domain) per source image, got "
                + ", ".join(f"{count} {what}" for what, count in counts.items()) + "."
            )

    def __len__(self) -> int:
        return len(self.source)

    def to(self, device: torch.device | str) -> "DomainTransfer":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return DomainTransfer(move(self.source), move(self.target), move(self.source_domains))

    def __getitem__(self, index) -> "DomainTransfer":
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        return DomainTransfer(pick(self.source), pick(self.target), pick(self.source_domains))


def single_domain_changes(source_domains: Tensor, num_domains: int, domain_names: Sequence[str] | None = None) -> list[Tensor]:
    """StarGAN's ``create_labels`` (yunjey/stargan ``solver.py``): one target per domain, for every source.

    Domain ids (N,): target ``k`` is domain ``k`` for all sources (``num_domains`` targets). Attribute vectors (N, A):
    target ``i`` changes attribute ``i`` alone: a hair colour (:data:`HAIR_COLOURS`, by ``domain_names``) is set and
    the other hair colours cleared, since a face has one; any other attribute is flipped.
    """
    if source_domains.dim() == 1:
        return [torch.full_like(source_domains, k) for k in range(num_domains)]
    names = list(domain_names or [])
    hair = [i for i, name in enumerate(names) if name in HAIR_COLOURS]
    changes = []
    for i in range(source_domains.shape[1]):
        target = source_domains.clone()
        if i in hair:
            target[:, hair] = 0
            target[:, i] = 1
        else:
            target[:, i] = 1 - target[:, i]
        changes.append(target)
    return changes


def draw_target_domains(
    source_domains: Tensor, num_domains: int, generator: torch.Generator, domain_names: Sequence[str] | None = None
) -> Tensor:
    """One seeded target per source, never the source's own domain where another exists: a uniformly drawn other
    domain id, or for attribute vectors one of :func:`single_domain_changes` (one attribute changed, hair colours
    exclusive) drawn uniformly among those that differ from the source's vector."""
    if source_domains.dim() == 1:
        if num_domains < 2:
            return source_domains.clone()
        shift = torch.randint(1, num_domains, source_domains.shape, generator=generator)
        return (source_domains + shift) % num_domains
    candidates = torch.stack(single_domain_changes(source_domains, num_domains, domain_names))  # (A, N, A)
    differs = (candidates != source_domains).any(dim=2)  # (A, N)
    scores = torch.rand(differs.shape, generator=generator).masked_fill(~differs, -1.0)
    choice = scores.argmax(dim=0)
    return candidates[choice, torch.arange(len(source_domains))]


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

    def conditions(self, n: int, conditioning: str | None, seed: int = 0) -> Tensor | DomainTransfer | None:
        """``n`` fixed conditions for ``sample(n, condition=...)``, the same for the same seed.

        ``"labels"``: the labels of ``n`` seeded draws from the training split, so generated samples follow the
        data's class distribution (what FID against the training set assumes); ``"source"``: the source images of
        ``n`` seeded draws from the held-out split (translations of images the model never trained on);
        ``"domain_transfer"``: a :class:`DomainTransfer` of the images of ``n`` seeded held-out draws (the same items
        as ``"source"`` would draw), their own domains, and targets from :func:`draw_target_domains` (same seed).
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
        if conditioning == "domain_transfer":
            return self._domain_transfer(batch, generator)
        value = batch.labels if conditioning == "labels" else batch.source
        if value is None:
            raise ValueError(
                f"the model is conditioned on {conditioning} but the batches of {type(self).__name__} carry none; "
                "pick data that provides them (translation data for source images, labelled data for labels)."
            )
        return value

    def _domain_transfer(self, batch: Batch, generator: torch.Generator) -> DomainTransfer:
        if batch.labels is None or batch.labels.dim() not in (1, 2):
            raise ValueError(
                f"the model translates between domains but the batches of {type(self).__name__} carry no domain labels; "
                "pick multi-domain data (data=mnist_domains, celeba_domains or domains_folder) or labelled images."
            )
        names = getattr(self, "domain_names", None)
        target = draw_target_domains(batch.labels, self.num_classes, generator, names)
        return DomainTransfer(batch.images, target, batch.labels)

    def _split_for(self, conditioning: str) -> Dataset:
        if self.train_set is None:
            self.setup("fit")
        held_out = self.val_set is not None and len(self.val_set) > 0
        if conditioning in ("source", "domain_transfer") and held_out:
            return self.val_set
        return self.train_set


def conditions_for(model, datamodule, n: int, seed: int = 0) -> Tensor | DomainTransfer | None:
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
