"""StarGAN's nets (Choi et al. 2018, App. A; yunjey/stargan ``model.py``): one generator for every domain and a
discriminator that also classifies the domain.

Generator: the target domain vector is tiled to ``num_domains`` constant maps and concatenated to the image; a 7x7
conv, two 4x4 stride-2 down-sampling convs (width doubling), ``repeat_num`` residual blocks, two 4x4 stride-2
transposed convs back up, a 7x7 conv to the image channels and Tanh. Every conv is bias-free and followed by
InstanceNorm with affine parameters and running statistics (``track_running_stats=True``, as the official code).
The official code never switches G to eval mode, so it always normalises with each image's own statistics and the
running ones are only carried along; :class:`InstanceNorm` does the same in eval mode (where torch would switch to
the running statistics), so ``sample()`` translates as the official ``test()`` does. Zero padding on purpose: the
official code notes that the tiled label maps carry no information through reflection padding and InstanceNorm.

Module and parameter names follow the official ``model.py`` (``main``, ``conv1`` = the adversarial head, ``conv2`` =
the domain head), so the official checkpoints' state dicts (``200000-G.ckpt``, ``200000-D.ckpt``) have these keys.

Discriminator: a PatchGAN trunk of ``repeat_num`` 4x4 stride-2 convs (width doubling) with LeakyReLU(0.01) and no
normalisation (a WGAN-GP critic must not normalise across the batch), then two heads on the same features: a 3x3
conv to one channel (the adversarial patch map) and a conv with kernel ``image_size / 2**repeat_num`` (the whole
remaining map) to ``num_domains`` logits.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class InstanceNorm(nn.InstanceNorm2d):
    """Affine InstanceNorm that tracks running statistics in training (the official layer) and normalises with the
    image's own statistics in eval mode too (what the official code does, never calling ``eval()``)."""

    def __init__(self, channels: int):
        super().__init__(channels, affine=True, track_running_stats=True)

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return super().forward(x)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, use_input_stats=True, eps=self.eps)


def instance_norm(channels: int) -> InstanceNorm:
    return InstanceNorm(channels)


class ResidualBlock(nn.Module):
    """x + (conv3x3-IN-ReLU-conv3x3-IN)(x), width kept."""

    def __init__(self, channels: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            instance_norm(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            instance_norm(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.main(x)


def default_residual_blocks(image_size: int) -> int:
    """The official 6 residual blocks at 128 px and above; 3 below, where the 4x down-sampled bottleneck (8x8 at
    32 px) is covered by the receptive field of fewer blocks and the CPU demo stays minutes."""
    return 6 if image_size >= 128 else 3


class StarGANGenerator(nn.Module):
    """(images (N, channels, H, W), target domain vectors (N, num_domains) float) -> images (N, channels, H, W) in
    [-1, 1]. H and W must be multiples of 4 (two down-samplings). Official: conv_dim 64, repeat_num 6 at 128 px;
    ``repeat_num=None`` picks :func:`default_residual_blocks` for ``image_size`` (the only use of ``image_size``)."""

    def __init__(self, channels: int, num_domains: int, image_size: int, conv_dim: int = 64, repeat_num: int | None = None):
        super().__init__()
        repeat_num = default_residual_blocks(image_size) if repeat_num is None else repeat_num
        if num_domains < 1 or repeat_num < 0 or conv_dim < 1:
            raise ValueError(
                f"StarGANGenerator needs num_domains >= 1, conv_dim >= 1 and repeat_num >= 0, got {num_domains}, "
                f"{conv_dim} and {repeat_num}."
            )
        self.channels = channels
        self.num_domains = num_domains
        layers: list[nn.Module] = [
            nn.Conv2d(channels + num_domains, conv_dim, 7, 1, 3, bias=False), instance_norm(conv_dim), nn.ReLU(inplace=True)
        ]
        width = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), instance_norm(width * 2), nn.ReLU(inplace=True)]
            width *= 2
        layers += [ResidualBlock(width) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), instance_norm(width // 2), nn.ReLU(inplace=True)
            ]
            width //= 2
        layers += [nn.Conv2d(width, channels, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, images: Tensor, domains: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != self.channels or images.shape[-1] % 4 or images.shape[-2] % 4:
            raise ValueError(
                f"StarGANGenerator expects images (N, {self.channels}, H, W) with H and W multiples of 4, "
                f"got {tuple(images.shape)}."
            )
        if domains.shape != (len(images), self.num_domains):
            raise ValueError(
                f"StarGANGenerator expects one target domain vector of {self.num_domains} values per image "
                f"(({len(images)}, {self.num_domains})), got {tuple(domains.shape)}."
            )
        maps = domains.to(images.dtype)[:, :, None, None].expand(-1, -1, *images.shape[-2:])
        return self.main(torch.cat([images, maps], dim=1))


class StarGANDiscriminator(nn.Module):
    """Images (N, channels, S, S) -> (adversarial patch map (N, 1, S', S'), domain logits (N, num_domains)) with
    S' = S / 2**repeat_num. ``repeat_num=None``: log2(S) - 1 strided convs, so the map is 2x2 at any size (the
    official 6 at 128 px; 4 at 32 px). Official: conv_dim 64."""

    def __init__(self, channels: int, image_size: int, num_domains: int, conv_dim: int = 64, repeat_num: int | None = None):
        super().__init__()
        if repeat_num is None:
            repeat_num = max(1, image_size.bit_length() - 2)
        if repeat_num < 1 or image_size % 2**repeat_num:
            raise ValueError(
                f"StarGANDiscriminator: image_size={image_size} must be divisible by 2**repeat_num (repeat_num="
                f"{repeat_num}); set model.discriminator.repeat_num to at most log2(image_size) (or null: log2 - 1)."
            )
        self.channels = channels
        self.image_size = image_size
        self.num_domains = num_domains
        layers: list[nn.Module] = [nn.Conv2d(channels, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        width = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            width *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(width, 1, 3, 1, 1, bias=False)  # adversarial head: one score per patch
        self.conv2 = nn.Conv2d(width, num_domains, image_size // 2**repeat_num, bias=False)  # domain head

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if images.dim() != 4 or images.shape[1:] != (self.channels, self.image_size, self.image_size):
            raise ValueError(
                f"StarGANDiscriminator expects images (N, {self.channels}, {self.image_size}, {self.image_size}), "
                f"got {tuple(images.shape)}."
            )
        features = self.main(images)
        return self.conv1(features), self.conv2(features).flatten(1)

    def critic(self, images: Tensor) -> Tensor:
        """The adversarial head alone: what the gradient penalty differentiates."""
        return self.forward(images)[0]
