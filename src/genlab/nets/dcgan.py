"""DCGAN networks (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with DCGANs").

Architecture guidelines from Sec. 3 of the paper: strided (transposed) convolutions instead of pooling, BatchNorm in
both nets except the generator output and the discriminator input, ReLU in G with a Tanh output, LeakyReLU(0.2) in D,
no fully connected hidden layers. The depth follows the image size: a 4x4 base doubled until ``image_size``.

``num_classes > 0`` makes them class-conditional (``genlab.nets.conditional``): G by the one-hot label appended to z
or by conditional BatchNorm, D by one-hot label maps at the input, a projection head or an auxiliary classifier.
"""

import math

import torch
from torch import nn

from genlab.nets.conditional import (
    GENERATOR_LABEL_MODES,
    ConditionalBatchNorm2d,
    ConditionalDiscriminator,
    LabelSequential,
    check_label_mode,
    concat_labels,
)
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
    """z (N, latent_dim) (and labels (N,)) -> image (N, channels, image_size, image_size) in [-1, 1].

    ``width`` is the number of feature maps of the last hidden layer (``ngf`` in the reference code); each layer
    towards the 4x4 base doubles it. Conditional (``num_classes > 0``): ``label_mode="concat"`` appends the one-hot
    label to z, ``"batchnorm"`` makes every BatchNorm conditional (per-class gain and bias; z alone is the input).
    """

    def __init__(
        self,
        latent_dim: int,
        channels: int,
        image_size: int,
        width: int = 64,
        init_std: float = 0.02,
        num_classes: int = 0,
        label_mode: str = "concat",
    ):
        super().__init__()
        check_label_mode(type(self).__name__, num_classes, label_mode, GENERATOR_LABEL_MODES)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.label_mode = label_mode if num_classes else None
        n_up = _num_upsamplings(image_size)
        maps = [width * 2 ** (n_up - 1 - i) for i in range(n_up)]  # e.g. 64px: [512, 256, 128, 64]
        n_in = latent_dim + (num_classes if self.label_mode == "concat" else 0)

        def norm(n: int) -> nn.Module:
            return ConditionalBatchNorm2d(n, num_classes) if self.label_mode == "batchnorm" else nn.BatchNorm2d(n)

        layers: list[nn.Module] = [
            nn.ConvTranspose2d(n_in, maps[0], 4, 1, 0, bias=False),
            norm(maps[0]),
            nn.ReLU(inplace=True),
        ]
        for n_in, n_out in zip(maps[:-1], maps[1:]):
            layers += [nn.ConvTranspose2d(n_in, n_out, 4, 2, 1, bias=False), norm(n_out), nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(maps[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = LabelSequential(*layers)
        normal_init(self, init_std)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.label_mode == "concat":
            z = concat_labels(z, labels, self.num_classes, self)
        return self.net(z.view(z.shape[0], -1, 1, 1), labels)


class DCGANDiscriminator(ConditionalDiscriminator):
    """Image (and label) -> one score per image. ``norm`` is the normalisation after every strided conv but the first.

    BatchNorm is the DCGAN default; critics trained with a gradient penalty must not use it (the penalty is per
    sample, BatchNorm mixes samples), so they pick ``layer``/``instance``/``none``. ``features`` ends with the 4x4
    maps flattened; the DCGAN output conv (4x4 kernel, no padding, on 4x4 maps) is the linear ``head`` on them.
    ``label_mode`` (with ``num_classes > 0``): ``"concat"`` (one-hot label maps as extra input channels),
    ``"projection"`` or ``"auxiliary"``, all on those features.
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        width: int = 64,
        norm: str = "batch",
        init_std: float = 0.02,
        minibatch_discrimination: int = 0,
        num_classes: int = 0,
        label_mode: str = "concat",
        pack: int = 1,  # PacGAN: judge this many samples together (genlab.nets.packing)
    ):
        super().__init__()
        self.init_labels(num_classes, label_mode, pack)
        n_down = _num_upsamplings(image_size)
        maps = [width * 2**i for i in range(n_down)]  # e.g. 64px: [64, 128, 256, 512]
        layers: list[nn.Module] = [
            nn.Conv2d(channels * self.pack + self.label_inputs, maps[0], 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        size = image_size // 2
        for n_in, n_out in zip(maps[:-1], maps[1:]):
            size //= 2
            layers += [nn.Conv2d(n_in, n_out, 4, 2, 1, bias=norm == "none"), _norm(norm, n_out, size)]
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.init_head(maps[-1] * 4 * 4, minibatch_discrimination)
        normal_init(self, init_std)


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
