"""MLPs for low-dimensional point data (the 2-D ring and grid mixtures), sized as in VEEGAN / PacGAN.

PacGAN (Lin et al. 2018, App. of the 2-D experiments, code fjxmlzn/PacGAN, which follows VEEGAN): G has 4 hidden
layers of 400 ReLU units with BatchNorm and a linear output; D has 3 hidden layers of 200 maxout units with 5
pieces each, and a linear score. The output is linear, not tanh: the grid spans [-4, 4]. ``num_classes > 0`` (e.g.
the mixture component as the class) conditions them as ``genlab.nets.conditional`` describes.
"""

import torch
from torch import nn

from genlab.nets.conditional import ConditionalDiscriminator, check_label_mode, concat_labels


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
    """z (N, latent_dim) -> points (N, dim): Linear + BatchNorm + ReLU per hidden layer, linear output.
    Conditional: ``label_mode="concat"`` (one-hot label appended to z)."""

    def __init__(
        self,
        latent_dim: int,
        dim: int,
        hidden: tuple[int, ...] = (400, 400, 400, 400),
        batch_norm: bool = True,
        num_classes: int = 0,
        label_mode: str = "concat",
    ):
        super().__init__()
        check_label_mode(type(self).__name__, num_classes, label_mode, ("concat",))
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.label_mode = label_mode if num_classes else None
        layers: list[nn.Module] = []
        for n_in, n_out in zip([latent_dim + num_classes, *hidden[:-1]], hidden):
            layers += [nn.Linear(n_in, n_out, bias=not batch_norm)]
            layers += [nn.BatchNorm1d(n_out)] if batch_norm else []
            layers += [nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers, nn.Linear(hidden[-1], dim))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            z = concat_labels(z, labels, self.num_classes, self)
        return self.net(z)


class ToyMLPDiscriminator(ConditionalDiscriminator):
    """Points (N, dim) (and labels) -> one score per point: maxout hidden layers, no normalisation (safe for gradient
    penalties, which need every score to depend on its own sample only). ``label_mode``: ``"concat"`` (one-hot
    appended to the point), ``"projection"``, ``"auxiliary"``."""

    def __init__(
        self,
        dim: int,
        hidden: tuple[int, ...] = (200, 200, 200),
        maxout_pieces: int = 5,
        minibatch_discrimination: int = 0,
        num_classes: int = 0,
        label_mode: str = "concat",
        pack: int = 1,  # PacGAN: judge this many samples together (genlab.nets.packing)
    ):
        super().__init__()
        self.init_labels(num_classes, label_mode, pack)
        sizes = [dim * self.pack + self.label_inputs, *hidden[:-1]]
        self.body = nn.Sequential(*(Maxout(n_in, n_out, maxout_pieces) for n_in, n_out in zip(sizes, hidden)))
        self.init_head(hidden[-1], minibatch_discrimination)
