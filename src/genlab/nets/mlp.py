"""Fully connected generator and discriminator of Goodfellow et al. 2014 ("Generative Adversarial Nets").

They flatten images, so they work on any ``channels x image_size x image_size`` shape. ``num_classes > 0`` makes
them class-conditional the cGAN way (Mirza & Osindero 2014): the one-hot label appended to z and to the flattened
image, or a projection / auxiliary-classifier head in D (``genlab.nets.conditional``).
"""

import math

import torch
from torch import nn

from genlab.nets.conditional import ConditionalDiscriminator, check_label_mode, concat_labels


def _mlp(sizes: list[int], activation: nn.Module, dropout: float = 0.0) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), activation]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return layers


class MLPGenerator(nn.Module):
    """z (and label) -> hidden ReLU layers -> tanh image in [-1, 1]. Conditional: ``label_mode="concat"`` only (the
    net has no BatchNorm to condition)."""

    def __init__(
        self,
        latent_dim: int,
        channels: int,
        image_size: int,
        hidden: tuple[int, ...] = (256, 512, 1024),
        num_classes: int = 0,
        label_mode: str = "concat",
    ):
        super().__init__()
        check_label_mode(type(self).__name__, num_classes, label_mode, ("concat",))
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.label_mode = label_mode if num_classes else None
        self.image_shape = (channels, image_size, image_size)
        self.net = nn.Sequential(
            *_mlp([latent_dim + num_classes, *hidden], nn.ReLU(inplace=True)),
            nn.Linear(hidden[-1], math.prod(self.image_shape)),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            z = concat_labels(z, labels, self.num_classes, self)
        return self.net(z).view(z.shape[0], *self.image_shape)


class MLPDiscriminator(ConditionalDiscriminator):
    """Image (and label) -> hidden LeakyReLU layers (with dropout, as in the 2014 paper's maxout/dropout D) -> one
    logit. ``label_mode``: ``"concat"`` (one-hot appended to the flattened image), ``"projection"``, ``"auxiliary"``."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        hidden: tuple[int, ...] = (1024, 512, 256),
        dropout: float = 0.3,
        minibatch_discrimination: int = 0,
        num_classes: int = 0,
        label_mode: str = "concat",
        pack: int = 1,  # PacGAN: judge this many samples together (genlab.nets.packing)
    ):
        super().__init__()
        self.init_labels(num_classes, label_mode, pack)
        n_in = channels * self.pack * image_size * image_size + self.label_inputs
        self.body = nn.Sequential(nn.Flatten(), *_mlp([n_in, *hidden], nn.LeakyReLU(0.2, inplace=True), dropout))
        self.init_head(hidden[-1], minibatch_discrimination)

    def label_input(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        # a one-hot vector after the flattened pixels, not K constant maps: the same input, K * H * W fewer weights
        return concat_labels(x.flatten(1), labels, self.num_classes, self)
