"""DCGAN's vector arithmetic (Radford et al. 2016, Sec. 6.3) for any model with ``decode(z, labels)`` and
``latent_dim``, with the exemplars of each concept found from labels instead of picked by hand.

Radford et al. chose three samples per concept by eye ("smiling woman", "neutral woman", "neutral man"), averaged
their z and decoded ``mean(a) - mean(b) + mean(c)``. Here a concept is a label, and where its exemplar latents come
from depends on what the model and the data offer, in this order:

1. **class-conditional models** (``conditioning == "labels"``: cGAN family, CVAE): a concept is a class id. Its
   exemplars are seeded prior latents decoded *for* that class. The class is an input of its own, not a direction in
   z, so the result is decoded for c's class: what the arithmetic moves is the style that z carries.
2. **models with an encoder** (``encode``: VAE): the posterior means of real training images that have the concept,
   a class id on labelled data or CelebA attributes (``[Smiling,-Male]``: smiling and not male). White 2016 builds
   attribute vectors the same way, from labelled data through the encoder.
3. **unconditional models on digit data** (GANs): a pool of seeded samples, read by the shipped MNIST classifier
   (``genlab.metrics.mnist_classifier()``, feature ``"logits"``); a concept's exemplars are the samples it assigns
   to that digit with the highest confidence.

A GAN on CelebA has neither an encoder nor a classifier for the 40 attributes, so nothing can tell which of its
samples smile: it is refused with what would work (a VAE on the same data, whose encoder reads real faces).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from genlab.callbacks.interpolation import has_latent, prior_latents
from genlab.data.labelled import item_labels
from genlab.latent import concept_arithmetic, neighbourhood
from genlab.models.base import evaluating

ROLES = ("a", "b", "c")
#: the shipped MNIST classifier must label at least this share of the data's real images correctly to pick digits
MIN_CLASSIFIER_ACCURACY = 0.9


@dataclass
class Concept:
    """What stands for one concept: ``exemplars`` (N, C, H, W) to show (real images or decodes), their ``latents``
    (N, latent_dim), and for class-conditional models the ``label`` (a class id) they were decoded for."""

    name: str
    exemplars: Tensor
    latents: Tensor
    label: int | None = None


def find_concepts(
    model, datamodule, specs: dict[str, Any], per_concept: int = 3, seed: int = 0, pool: int = 1000, batch_size: int = 250
) -> tuple[dict[str, Concept], str]:
    """The exemplars of concepts ``specs["a"]``, ``["b"]``, ``["c"]`` and a line saying where they came from."""
    if not has_latent(model):
        raise ValueError(
            f"mode=arithmetic decodes latents: it needs a model with decode(z, labels) and latent_dim (GANs, VAE, "
            f"CVAE), but {type(model).__name__} has none. Pick a checkpoint of such a model."
        )
    if per_concept < 1:
        raise ValueError(f"arithmetic.per_concept must be at least 1 (Radford et al. 2016 average 3), got {per_concept}.")
    attributes = callable(getattr(datamodule, "attribute_table", None))
    classes = int(getattr(datamodule, "num_classes", 0) or 0)
    if getattr(model, "conditioning", None) == "labels":
        names = {role: class_id(role, specs.get(role), model.num_classes, "of the model") for role in ROLES}
        return class_concepts(model, names, per_concept, seed), "class-conditional samples, decoded for their class"
    if callable(getattr(model, "encode", None)) and (attributes or classes):
        if attributes:
            table = datamodule.attribute_table()
            masks = {role: table.matching(attribute_terms(role, specs.get(role), table.names)) for role in ROLES}
        else:
            labels = item_labels(datamodule.train_set)
            masks = {role: labels == class_id(role, specs.get(role), classes, f"of {type(datamodule).__name__}") for role in ROLES}
        names = {role: _name(specs.get(role)) for role in ROLES}
        return encoder_concepts(model, datamodule, names, masks, per_concept, seed), "posterior means of real training images"
    if classes:
        names = {role: class_id(role, specs.get(role), classes, f"of {type(datamodule).__name__}") for role in ROLES}
        concepts = classifier_concepts(model, datamodule, names, per_concept, seed, pool, batch_size)
        return concepts, f"of {pool} seeded samples, those the MNIST classifier most surely reads as each digit"
    if attributes:
        raise ValueError(
            f"{type(model).__name__} has no encoder, and genlab ships no classifier for CelebA's attributes, so "
            "nothing can tell which of its samples show an attribute. Train a VAE on the same data "
            "(python train.py model=vae data=celeba model.likelihood=gaussian): its encoder finds the latents of real "
            "faces with and without each attribute, and mode=arithmetic then works on its checkpoint."
        )
    raise ValueError(
        f"mode=arithmetic takes its concepts from labels, but {type(datamodule).__name__} has none (num_classes=0, "
        "no attributes). Use labelled data (data=mnist5k, mnist, cifar10) or CelebA's attributes (data=celeba)."
    )


def class_id(role: str, spec: Any, num_classes: int, where: str) -> int:
    """``spec`` as a class id in 0..num_classes-1, or one error naming the allowed values."""
    if isinstance(spec, str) and spec.strip().isdigit():
        spec = int(spec)
    if isinstance(spec, bool) or not isinstance(spec, int) or not 0 <= spec < num_classes:
        raise ValueError(
            f"arithmetic.{role}={_name(spec)}: the concepts here are the classes {where}, class ids 0..{num_classes - 1}; "
            f"e.g. arithmetic.a=7 arithmetic.b=1 arithmetic.c=4."
        )
    return spec


def attribute_terms(role: str, spec: Any, names: list[str]) -> list[str]:
    """``spec`` (one attribute or a list; ``-Name`` = without it) as a list of terms, or one error naming them."""
    terms = [spec] if isinstance(spec, str) else list(spec) if isinstance(spec, Sequence) else []
    if not terms or not all(isinstance(t, str) for t in terms):
        raise ValueError(
            f"arithmetic.{role}={_name(spec)}: the concepts here are CelebA attributes, one or a list, prefix - for "
            f"'without' (e.g. arithmetic.a=[Smiling,-Male] arithmetic.b=[-Smiling,-Male] arithmetic.c=[-Smiling,Male]); "
            f"choose from {names}."
        )
    return terms


def class_concepts(model, labels: dict[str, int], per_concept: int, seed: int) -> dict[str, Concept]:
    """Seeded prior latents decoded for each concept's class: block ``label`` of ``num_classes`` blocks of
    ``per_concept`` draws, so the exemplars depend on the class and the seed only and ``a == b`` cancels exactly."""
    z = prior_latents(model, per_concept * model.num_classes, torch.Generator().manual_seed(seed))
    blocks = z.view(model.num_classes, per_concept, -1)
    concepts = {}
    for role in ROLES:
        label = labels[role]
        concepts[role] = Concept(str(label), decode(model, blocks[label], label), blocks[label].cpu(), label)
    return concepts


def encoder_concepts(model, datamodule, names: dict[str, str], masks: dict[str, Tensor], per_concept: int, seed: int) -> dict[str, Concept]:
    """``per_concept`` seeded training items per concept mask, and their posterior means. The choice depends on the
    concept and the seed only, so ``a == b`` cancels exactly."""
    concepts = {}
    for role in ROLES:
        candidates = masks[role].nonzero().squeeze(1)
        if len(candidates) < per_concept:
            raise ValueError(
                f"arithmetic.{role}={names[role]}: only {len(candidates)} training images of {type(datamodule).__name__} "
                f"have it, {per_concept} needed; lower arithmetic.per_concept or pick a concept with more images."
            )
        order = torch.randperm(len(candidates), generator=torch.Generator().manual_seed(seed))
        batch = datamodule.batch_of(datamodule.train_set, candidates[order[:per_concept]].tolist())
        with evaluating(model):
            mean, _ = model.encode(batch.images.to(model.device))
        concepts[role] = Concept(names[role], batch.images.cpu(), mean.cpu())
    return concepts


def classifier_concepts(
    model, datamodule, digits: dict[str, int], per_concept: int, seed: int, pool: int, batch_size: int
) -> dict[str, Concept]:
    """Exemplars picked from ``pool`` seeded samples by the shipped MNIST classifier: per digit, the samples it assigns
    to that digit with the highest probability. The data must be digits it reads (checked on real images)."""
    read = classify_pool(model, datamodule, pool, seed, batch_size)
    counts = torch.bincount(read.predicted, minlength=read.probability.shape[1])
    confidence = read.probability.max(1).values
    concepts = {}
    for role in ROLES:
        digit = digits[role]
        candidates = (read.predicted == digit).nonzero().squeeze(1)
        if len(candidates) < per_concept:
            raise ValueError(
                f"arithmetic.{role}={digit}: the MNIST classifier reads only {len(candidates)} of {pool} samples as "
                f"digit {digit}, {per_concept} needed (samples per digit: {counts.tolist()}). Raise arithmetic.pool, "
                "lower arithmetic.per_concept, pick another digit, or train the model longer."
            )
        chosen = candidates[confidence[candidates].argsort(descending=True)[:per_concept]]
        concepts[role] = Concept(str(digit), read.images[chosen], read.latents[chosen])
    return concepts


@dataclass
class ClassifiedPool:
    """Seeded samples with their ``latents``, the classifier's class ``probability`` (N, 10) and ``predicted``."""

    images: Tensor
    latents: Tensor
    probability: Tensor

    @property
    def predicted(self) -> Tensor:
        return self.probability.argmax(1)


@torch.no_grad()
def classify_pool(model, datamodule, pool: int, seed: int, batch_size: int = 250) -> ClassifiedPool:
    """``pool`` samples from seeded prior latents, read by the shipped MNIST classifier (after checking that it
    reads the data's real images)."""
    from genlab.metrics import mnist_classifier

    classifier = mnist_classifier().to(model.device)
    check_classifier_reads(classifier, datamodule, seed)
    z = prior_latents(model, pool, torch.Generator().manual_seed(seed))
    images = torch.cat([decode(model, z[start : start + batch_size]) for start in range(0, pool, batch_size)])
    probability = torch.cat(
        [classifier(images[start : start + batch_size].to(model.device))["logits"].softmax(1).cpu() for start in range(0, pool, batch_size)]
    )
    return ClassifiedPool(images, z.cpu(), probability)


def check_classifier_reads(classifier, datamodule, seed: int, n: int = 256) -> None:
    """Refuse data the shipped MNIST classifier cannot read (its picks would be arbitrary): it must label at least
    ``MIN_CLASSIFIER_ACCURACY`` of ``n`` seeded real training images correctly."""
    dataset = datamodule.train_set
    indices = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    batch = datamodule.batch_of(dataset, indices)
    device = next(classifier.parameters()).device
    accuracy = (classifier(batch.images.to(device))["logits"].argmax(1).cpu() == batch.labels).float().mean().item()
    if accuracy < MIN_CLASSIFIER_ACCURACY:
        raise ValueError(
            f"an unconditional model without an encoder gets its exemplars from the shipped MNIST classifier, but it "
            f"labels only {accuracy:.0%} of the real images of {type(datamodule).__name__} correctly (at least "
            f"{MIN_CLASSIFIER_ACCURACY:.0%} needed): its picks would mean nothing on this data. Use digit data "
            "(data=mnist5k, data=mnist), a class-conditional model, or a VAE (its encoder reads the real images)."
        )


def arithmetic_rows(model, concepts: dict[str, Concept], noise: float = 0.25, seed: int = 0) -> tuple[Tensor, int]:
    """The grid's images, row-major, and its width: rows a, b, c (exemplars, then their mean latent decoded) and the
    result row (``mean(a) - mean(b) + mean(c)`` decoded, then as many decodes of it plus uniform noise in
    [-noise, noise] as a row has exemplars; Radford et al. 2016, Fig. 7). Empty cells are black."""
    width = 1 + max(len(c.exemplars) for c in concepts.values())
    y = concept_arithmetic(*(concepts[role].latents for role in ROLES))
    result_label = concepts["c"].label
    result = y[None]
    if noise > 0:
        result = torch.cat([result, neighbourhood(y, width - 1, noise, torch.Generator().manual_seed(seed))])
    rows = []
    for c in (concepts[role] for role in ROLES):
        rows.append(torch.cat([c.exemplars, decode(model, c.latents.mean(0, keepdim=True), c.label)]))
    rows.append(decode(model, result, result_label))
    blank = -torch.ones_like(rows[0][:1])
    padded = [torch.cat([row, blank.expand(width - len(row), -1, -1, -1)]) for row in rows]
    return torch.cat(padded), width


def decode(model, z: Tensor, label: int | None = None) -> Tensor:
    """Images (N, C, H, W) on the CPU from latents ``z``, for one class id ``label`` where the model takes one."""
    labels = None if label is None else torch.full((len(z),), label, dtype=torch.long, device=model.device)
    with evaluating(model):
        images = model.decode(z.to(model.device), labels).cpu()
    if images.dim() != 4:
        raise ValueError(f"mode=arithmetic draws image grids; {type(model).__name__} decodes to shape {tuple(images.shape)}.")
    return images


def _name(spec: Any) -> str:
    if spec is None:
        return "null (not given)"
    if isinstance(spec, (str, int)):
        return str(spec)
    return "[" + ",".join(str(s) for s in spec) + "]"
