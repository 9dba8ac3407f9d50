"""MLPs for low-dimensional point data (the 2-D ring and grid mixtures), sized as in VEEGAN / PacGAN.

PacGAN (Lin et al. 2018, App. of the 2-D experiments, code fjxmlzn/PacGAN, which follows VEEGAN): G has 4 hidden
layers of 400 ReLU units with BatchNorm and a linear output; D has 3 hidden layers of 200 maxout units with 5
pieces each, and a linear score. The output is linear, not tanh: the grid spans [-4, 4].
"""

import torch
from torch import nn

from genlab.nets.heads import score_head


class Maxout(nn.Module):
    """Goodfellow et al. 2013: ``pieces`` linear maps per unit, the unit outputs their maximum."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.out_features = out_features
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.out_features, self.pieces).amax(2)


class ToyMLPGenerator(nn.Module):
    """z (N, latent_dim) -> points (N, dim): Linear + BatchNorm + ReLU per hidden layer, linear output."""

    def __init__(self, latent_dim: int, dim: int, hidden: tuple[int, ...] = (400, 400, 400, 400), batch_norm: bool = True):
        super().__init__()
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        for n_in, n_out in zip([latent_dim, *hidden[:-1]], hidden):
            layers += [nn.Linear(n_in, n_out, bias=not batch_norm)]
            layers += [nn.BatchNorm1d(n_out)] if batch_norm else []
            layers += [nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers, nn.Linear(hidden[-1], dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ToyMLPDiscriminator(nn.Module):
    """Points (N, dim) -> one score per point: maxout hidden layers, no normalisation (safe for gradient
    penalties, which need every score to depend on its own sample only)."""

    def __init__(
        self,
        dim: int,
        hidden: tuple[int, ...] = (200, 200, 200),
        maxout_pieces: int = 5,
        minibatch_discrimination: int = 0,
    ):
        super().__init__()
        self.body = nn.Sequential(*(Maxout(n_in, n_out, maxout_pieces) for n_in, n_out in zip([dim, *hidden[:-1]], hidden)))
        self.head = score_head(hidden[-1], minibatch_discrimination)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)
