"""Fully connected generator and discriminator of Goodfellow et al. 2014 ("Generative Adversarial Nets").

They flatten images, so they work on any ``channels x image_size x image_size`` shape.
"""

import math

import torch
from torch import nn

from genlab.nets.heads import score_head


def _mlp(sizes: list[int], activation: nn.Module, dropout: float = 0.0) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), activation]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return layers


class MLPGenerator(nn.Module):
    """z -> hidden ReLU layers -> tanh image in [-1, 1]."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, hidden: tuple[int, ...] = (256, 512, 1024)):
        super().__init__()
        self.latent_dim = latent_dim
        self.image_shape = (channels, image_size, image_size)
        self.net = nn.Sequential(
            *_mlp([latent_dim, *hidden], nn.ReLU(inplace=True)),
            nn.Linear(hidden[-1], math.prod(self.image_shape)),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)


class MLPDiscriminator(nn.Module):
    """Image -> hidden LeakyReLU layers (with dropout, as in the 2014 paper's maxout/dropout D) -> one logit."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        hidden: tuple[int, ...] = (1024, 512, 256),
        dropout: float = 0.3,
        minibatch_discrimination: int = 0,
    ):
        super().__init__()
        n_in = channels * image_size * image_size
        self.body = nn.Sequential(nn.Flatten(), *_mlp([n_in, *hidden], nn.LeakyReLU(0.2, inplace=True), dropout))
        self.head = score_head(hidden[-1], minibatch_discrimination)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)
