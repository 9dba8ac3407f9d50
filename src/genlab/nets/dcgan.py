"""DCGAN networks (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with DCGANs").

Architecture guidelines from Sec. 3 of the paper: strided (transposed) convolutions instead of pooling, BatchNorm in
both nets except the generator output and the discriminator input, ReLU in G with a Tanh output, LeakyReLU(0.2) in D,
no fully connected hidden layers. The depth follows the image size: a 4x4 base doubled until ``image_size``.
"""

import math

import torch
from torch import nn

from genlab.nets.heads import score_head
from genlab.nets.init import normal_init


def _num_upsamplings(image_size: int) -> int:
    n = math.log2(image_size / 4)
    if image_size < 8 or not n.is_integer():
        raise ValueError(
            f"DCGAN nets need image_size = 4 * 2^k with k >= 1 (8, 16, 32, 64, 128, ...), got {image_size}. "
            "Set data.image_size to a power of two."
        )
    return int(n)


class DCGANGenerator(nn.Module):
    """z (N, latent_dim) -> image (N, channels, image_size, image_size) in [-1, 1].

    ``width`` is the number of feature maps of the last hidden layer (``ngf`` in the reference code); each layer
    towards the 4x4 base doubles it.
    """

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int = 64, init_std: float = 0.02):
        super().__init__()
        self.latent_dim = latent_dim
        n_up = _num_upsamplings(image_size)
        maps = [width * 2 ** (n_up - 1 - i) for i in range(n_up)]  # e.g. 64px: [512, 256, 128, 64]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, maps[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(maps[0]),
            nn.ReLU(inplace=True),
        ]
        for n_in, n_out in zip(maps[:-1], maps[1:]):
            layers += [nn.ConvTranspose2d(n_in, n_out, 4, 2, 1, bias=False), nn.BatchNorm2d(n_out), nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(maps[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        normal_init(self, init_std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.latent_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """Image -> one score per image. ``norm`` is the normalisation after every strided conv but the first.

    BatchNorm is the DCGAN default; critics trained with a gradient penalty must not use it (the penalty is per
    sample, BatchNorm mixes samples), so they pick ``layer``/``instance``/``none``. ``features`` ends with the 4x4
    maps flattened; the DCGAN output conv (4x4 kernel, no padding, on 4x4 maps) is the linear ``head`` on them.
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        width: int = 64,
        norm: str = "batch",
        init_std: float = 0.02,
        minibatch_discrimination: int = 0,
    ):
        super().__init__()
        n_down = _num_upsamplings(image_size)
        maps = [width * 2**i for i in range(n_down)]  # e.g. 64px: [64, 128, 256, 512]
        layers: list[nn.Module] = [nn.Conv2d(channels, maps[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        size = image_size // 2
        for n_in, n_out in zip(maps[:-1], maps[1:]):
            size //= 2
            layers += [nn.Conv2d(n_in, n_out, 4, 2, 1, bias=norm == "none"), _norm(norm, n_out, size)]
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.head = score_head(maps[-1] * 4 * 4, minibatch_discrimination)
        normal_init(self, init_std)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


def _norm(kind: str, maps: int, size: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(maps)
    if kind == "instance":
        return nn.InstanceNorm2d(maps, affine=True)
    if kind == "layer":
        return nn.LayerNorm([maps, size, size])
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"Unknown discriminator norm {kind!r}; choose one of 'batch', 'instance', 'layer', 'none'.")
