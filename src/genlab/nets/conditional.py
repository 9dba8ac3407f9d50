"""Label conditioning for generators and discriminators: the pieces every net shares, so no net copies them.

``num_classes = 0`` means unconditional: a net built with it has exactly the modules (so the parameters, their
initialisation and the outputs) it had before conditioning existed, and ignores labels. With ``num_classes = K > 0``
the net reads class ids (N,) in 0..K-1 through ``label_mode``:

Generators
  * ``"concat"``: the one-hot label appended to z (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets",
    Sec. 3.2: y fed to G as an additional input layer);
  * ``"batchnorm"``: conditional BatchNorm, a per-class gain and bias after each normalisation (de Vries et al. 2017,
    "Modulating early visual processing by language"; the generator of Miyato & Koyama 2018).

Discriminators
  * ``"concat"``: the one-hot label appended to the input, as constant maps (N, C + K, H, W) for images or as a
    vector for flat inputs (Mirza & Osindero 2014);
  * ``"projection"``: logit = psi(phi(x)) + <embed(y), phi(x)> (Miyato & Koyama 2018, "cGANs with Projection
    Discriminator", Eq. 3), phi = the trunk (``features``), psi = the score head;
  * ``"auxiliary"``: the trunk also feeds a K-way classifier (Odena et al. 2017, ACGAN); the score ignores labels,
    and :meth:`ConditionalDiscriminator.score_and_classify` returns score and class logits from one trunk pass.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.nets.heads import score_head
from genlab.nets.packing import check_pack, pack_samples

GENERATOR_LABEL_MODES = ("concat", "batchnorm")
DISCRIMINATOR_LABEL_MODES = ("concat", "projection", "auxiliary")


def check_label_mode(net: str, num_classes: int, label_mode: str, allowed: tuple[str, ...]) -> None:
    """Refuse a class count or label mode a net cannot build, naming the net and the choices."""
    if num_classes < 0 or num_classes == 1:
        raise ValueError(f"{net}: num_classes is 0 (unconditional) or the number of classes (>= 2), got {num_classes}.")
    if label_mode not in allowed:
        raise ValueError(f"{net}: label_mode must be one of {list(allowed)}, got {label_mode!r}.")


def concat_labels(x: Tensor, labels: Tensor | None, num_classes: int, net: nn.Module) -> Tensor:
    """``x`` (N, D) -> (N, D + K) with the one-hot label appended; ``x`` (N, C, H, W) -> (N, C + K, H, W) with the
    one-hot label as K constant maps (Mirza & Osindero 2014's input conditioning)."""
    if labels is None:
        raise ValueError(f"{type(net).__name__} is class-conditional (num_classes={num_classes}): pass labels.")
    code = F.one_hot(labels, num_classes).to(x.dtype)
    if x.dim() == 4:
        code = code[:, :, None, None].expand(-1, -1, *x.shape[2:])
    return torch.cat([x, code], dim=1)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without an affine of its own, then a gain and a bias looked up per class (de Vries et al. 2017).
    Gains start at 1 and biases at 0, i.e. as plain BatchNorm; :func:`genlab.nets.init.normal_init` (DCGAN nets)
    draws the gains N(1, std) like every other BatchNorm scale."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        return self.norm(x) * self.gain(labels)[:, :, None, None] + self.bias(labels)[:, :, None, None]


class LabelSequential(nn.Sequential):
    """``nn.Sequential`` that hands the labels to the layers that read them (:class:`ConditionalBatchNorm2d`).
    Same parameter names as ``nn.Sequential``, so unconditional checkpoints keep loading."""

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        for layer in self:
            if isinstance(layer, ConditionalBatchNorm2d):
                if labels is None:
                    raise ValueError("this generator uses conditional BatchNorm (label_mode='batchnorm'): pass labels.")
                x = layer(x, labels)
            else:
                x = layer(x)
        return x


class ConditionalDiscriminator(nn.Module):
    """A discriminator as trunk phi (``body``: input -> (N, F), :meth:`features`) and score head psi (``head``),
    with the label modes of this module and PacGAN packing (:mod:`genlab.nets.packing`). Subclasses call
    :meth:`init_labels` before building ``body`` (its input has ``pack`` times the sample's channels / entries, and in
    ``"concat"`` mode :attr:`label_inputs` more) and :meth:`init_head` after."""

    body: nn.Module

    def init_labels(self, num_classes: int, label_mode: str, pack: int = 1) -> None:
        check_label_mode(type(self).__name__, num_classes, label_mode, DISCRIMINATOR_LABEL_MODES)
        self.num_classes = num_classes
        self.label_mode = label_mode if num_classes else None
        self.pack = check_pack(type(self).__name__, pack, num_classes)

    @property
    def label_inputs(self) -> int:
        """Extra input channels (images) or entries (flat inputs) that the one-hot label takes in ``"concat"`` mode."""
        return self.num_classes if self.label_mode == "concat" else 0

    def init_head(self, features: int, minibatch_discrimination: int = 0) -> None:
        """psi, and the label head the mode needs. The projection embedding starts on the scale of a default linear
        layer over the F features, so <embed(y), phi(x)> starts as large as psi(phi(x)), not sqrt(F) times larger."""
        self.head = score_head(features, minibatch_discrimination)
        if self.label_mode == "projection":
            self.projection = nn.Embedding(self.num_classes, features)
            nn.init.uniform_(self.projection.weight, -1 / math.sqrt(features), 1 / math.sqrt(features))
        elif self.label_mode == "auxiliary":
            self.classifier = nn.Linear(features, self.num_classes)

    def label_input(self, x: Tensor, labels: Tensor | None) -> Tensor:
        """The input with the label appended (``"concat"`` mode); nets with a flat first layer flatten first."""
        return concat_labels(x, labels, self.num_classes, self)

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """phi(x) (N, F): the last hidden layer (feature matching, minibatch discrimination and the heads read it);
        (N // pack, F) for a packed discriminator, one row per pack."""
        x = pack_samples(x, self.pack)
        if self.label_mode == "concat":
            x = self.label_input(x, labels)
        return self.body(x)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        phi = self.features(x, labels)
        scores = self.head(phi).squeeze(1)
        if self.label_mode == "projection":
            if labels is None:
                raise ValueError(f"{type(self).__name__} has a projection head (label_mode='projection'): pass labels.")
            scores = scores + (self.projection(labels) * phi).sum(1)
        return scores

    def score_and_classify(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(scores (N,), class_logits (N, K))`` from one trunk pass (ACGAN's two heads on phi(x))."""
        if self.label_mode != "auxiliary":
            raise ValueError(
                f"{type(self).__name__} has no auxiliary classifier (label_mode={self.label_mode!r}); "
                "build it with num_classes > 0 and label_mode='auxiliary' (model/conditioning=auxiliary)."
            )
        phi = self.features(x)
        return self.head(phi).squeeze(1), self.classifier(phi)
