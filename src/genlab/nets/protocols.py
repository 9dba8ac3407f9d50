"""The contracts nets are built to, as ``typing.Protocol``s: a scheme checks its nets against them when it is
built, so a wrong ``_target_`` fails with the key to fix instead of a shape error deep inside a training step.

Labels: every genlab generator and discriminator takes ``labels=None`` (class ids (N,)) and a ``num_classes``
(0 = unconditional: labels are ignored, and the net is exactly the unconditional one). A scheme is class-conditional
when its nets are (:class:`ClassConditional`); ``genlab.nets.conditional`` has the label modes.
"""

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Generator(Protocol):
    """Noise (N, latent_dim) (and labels (N,), for a conditional generator) -> samples (N, C, H, W) in [-1, 1], or
    points (N, dim)."""

    latent_dim: int

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class Discriminator(Protocol):
    """Samples (and labels) -> one score per sample; ``features`` is its last hidden layer phi(x) (N, F), which
    feature matching, minibatch discrimination and the label heads read."""

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor: ...

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class ClassConditional(Protocol):
    """What a scheme reads to decide that a net is class-conditional: ``num_classes`` (> 0: it needs labels in
    0..num_classes-1) and ``label_mode`` (how it reads them: ``"concat"`` / ``"batchnorm"`` for generators,
    ``"concat"`` / ``"projection"`` / ``"auxiliary"`` for discriminators; ``None`` when unconditional)."""

    num_classes: int
    label_mode: str | None


@runtime_checkable
class AuxiliaryClassifier(Protocol):
    """A discriminator with ``label_mode="auxiliary"`` (ACGAN, Odena et al. 2017): its real/fake score ignores the
    labels, and ``score_and_classify`` returns ``(scores (N,), class_logits (N, num_classes))`` from ONE pass of the
    trunk phi(x), so a training step pays for the classifier with one linear layer, not a second forward pass."""

    num_classes: int

    def score_and_classify(self, x: Tensor) -> tuple[Tensor, Tensor]: ...


@runtime_checkable
class Translator(Protocol):
    """Source images (N, in_channels, H, W) -> target images (N, out_channels, H, W) in [-1, 1]."""

    in_channels: int
    out_channels: int

    def forward(self, source: Tensor) -> Tensor: ...
