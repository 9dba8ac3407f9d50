"""ProGAN nets (Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs for Improved Quality, Stability,
and Variation", Sec. 2-4 and Table 2), built once at full size and run at any resolution 4, 8, ..., image_size.

* Generator: z (pixel-normalised) -> a dense layer to 4x4 maps, a 3x3 conv; then per resolution a block of nearest
  2x upsampling and two 3x3 convs; a 1x1 ``to_rgb`` conv per resolution, with a linear output.
* Discriminator: the mirror image. A 1x1 ``from_rgb`` conv per resolution; per resolution two 3x3 convs and a 2x2
  average pool; at 4x4 the minibatch standard deviation map, a 3x3 conv, a 4x4 conv (= dense) and a linear score.
* Leaky ReLU 0.2 everywhere but the outputs; pixel norm after every conv of the generator (Sec. 4.2); every layer
  has an equalised learning rate (Sec. 4.1).
* Feature maps per resolution as Table 2: ``width`` up to ``full_width_until`` px, halved at each doubling above
  (the paper's 512 up to 32 px gives 512 to 32 px, 256 at 64, 128 at 128, ..., 16 at 1024; the official code's
  ``fmap_max`` and ``fmap_base``).

Growing is a forward argument, not state: ``generator(z, resolution=r, alpha=a)`` and ``discriminator(x, alpha=a)``
(the resolution is the input's) run the blocks up to r, with the newest one faded in by a (Sec. 2, Fig. 2).
``resolution=None`` and ``alpha=1`` give the full-size nets. Which resolution and alpha to train at is the training
scheme's business (:mod:`genlab.models.progan`).
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BASE_RESOLUTION = 4  # growing starts from 4x4 (Sec. 2)
LEAK = 0.2


def growth_levels(image_size: int) -> int:
    """Doublings from 4x4 to ``image_size`` (4: 0, 8: 1, 32: 3, 1024: 8); other sizes are refused with the key."""
    doublings = math.log2(image_size / BASE_RESOLUTION) if image_size > 0 else -1.0
    if doublings < 0 or not doublings.is_integer():
        raise ValueError(
            f"ProGAN grows from 4x4 by doubling, so data.image_size must be a power of two >= 4 (4, 8, 16, 32, 64, "
            f"128, ...); got {image_size}. Set data.image_size to one of those (data=mnist5k is 32 px)."
        )
    return int(doublings)


def feature_maps(resolution: int, width: int, full_width_until: int) -> int:
    """Maps at ``resolution``: ``width`` up to ``full_width_until`` px, halved per doubling above (Table 2: 512, 32)."""
    return max(1, min(width, width * full_width_until // resolution))


def fade(old: Tensor, new: Tensor, alpha: float) -> Tensor:
    """The fade-in of a new block (Sec. 2, Fig. 2): (1 - alpha) * old + alpha * new."""
    return (1 - alpha) * old + alpha * new


def upsample(x: Tensor) -> Tensor:
    """Nearest-neighbour 2x: the paper's upsampling in G and of the old ``to_rgb`` output during a fade."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def downsample(x: Tensor) -> Tensor:
    """2x2 average pooling: the paper's downsampling in D and of real images."""
    return F.avg_pool2d(x, 2)


def pixel_norm(x: Tensor, epsilon: float = 1e-8) -> Tensor:
    """Sec. 4.2: b = a / sqrt(mean_j a_j^2 + eps) over the feature maps j of each pixel, so no feature's magnitude
    can run away in the generator; also applied to z (the official code's ``normalize_latents``)."""
    return x * torch.rsqrt(x.square().mean(1, keepdim=True) + epsilon)


def minibatch_stddev(x: Tensor, group_size: int = 4) -> Tensor:
    """Sec. 3: the standard deviation of each feature and pixel over a group of samples, averaged over all of them
    to one number per group, appended to every sample of the group as one more constant feature map. D can then
    see how varied a batch is and penalise a collapsed generator.

    Groups of ``group_size`` consecutive samples as in the official code (``minibatch_stddev_layer``, group 4; the
    paper's text uses the whole minibatch); the standard deviation is the population one, sqrt(mean (x - mean)^2 + 1e-8).
    """
    n, c, h, w = x.shape
    group = min(group_size, n)
    if n % group:
        raise ValueError(
            f"The ProGAN discriminator's minibatch standard deviation splits batches into groups of {group}, but got a "
            f"batch of {n}: set data.batch_size to a multiple of {group} (or model.discriminator.minibatch_group_size "
            f"to a divisor of the batch size)."
        )
    grouped = x.reshape(group, n // group, c, h, w)  # strided groups, as the official reshape [G, M, C, H, W]
    std = torch.sqrt(grouped.var(0, unbiased=False) + 1e-8)  # (M, C, H, W)
    per_group = std.mean((1, 2, 3))  # (M,)
    stat = per_group.repeat(group).view(n, 1, 1, 1).expand(n, 1, h, w)
    return torch.cat([x, stat], 1)


class EqualizedConv2d(nn.Module):
    """Sec. 4.1: weights drawn from N(0, 1) and scaled at run time by He's constant gain / sqrt(fan_in), biases 0.
    Adam's update is invariant to a weight's scale, so with the scale outside the parameter every layer learns at
    the same speed whatever its fan-in. ``kernel_size`` odd: same padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = math.sqrt(2), padding: int | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2 if padding is None else padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    """The dense counterpart of :class:`EqualizedConv2d` (Sec. 4.1)."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def _act(x: Tensor) -> Tensor:
    return F.leaky_relu(x, LEAK)


class ProGANGenerator(nn.Module):
    """z (N, latent_dim) -> images (N, channels, r, r) at any growth resolution r (default: ``image_size``).

    The output is linear, as in the paper; the training scheme clamps samples to [-1, 1] for the sampling contract.
    """

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int = 512, full_width_until: int = 32):
        super().__init__()
        self.latent_dim, self.channels, self.image_size = latent_dim, channels, image_size
        levels = growth_levels(image_size)
        maps = [feature_maps(BASE_RESOLUTION * 2**level, width, full_width_until) for level in range(levels + 1)]
        # gain sqrt(2)/4 for the dense layer to 4x4 maps, as the official code (networks.py, G_paper)
        self.dense = EqualizedLinear(latent_dim, maps[0] * BASE_RESOLUTION**2, gain=math.sqrt(2) / 4)
        self.base_conv = EqualizedConv2d(maps[0], maps[0], 3)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualizedConv2d(maps[level - 1], maps[level], 3), EqualizedConv2d(maps[level], maps[level], 3)])
            for level in range(1, levels + 1)
        )
        self.to_rgb = nn.ModuleList(EqualizedConv2d(m, channels, 1, gain=1.0) for m in maps)

    def forward(self, z: Tensor, labels: Tensor | None = None, resolution: int | None = None, alpha: float = 1.0) -> Tensor:
        """``labels`` is accepted for the generator contract and ignored (unconditional). ``alpha`` < 1 fades the
        block of ``resolution`` in over the 2x-upsampled output of the resolution below."""
        level = self._level(resolution)
        x = self.dense(pixel_norm(z)).view(len(z), -1, BASE_RESOLUTION, BASE_RESOLUTION)
        x = pixel_norm(_act(x))
        x = pixel_norm(_act(self.base_conv(x)))
        for block in self.blocks[:level]:
            previous, x = x, upsample(x)  # previous: the maps the resolution below ends with
            for conv in block:
                x = pixel_norm(_act(conv(x)))
        new_rgb = self.to_rgb[level](x)
        if level == 0 or alpha >= 1:
            return new_rgb
        return fade(upsample(self.to_rgb[level - 1](previous)), new_rgb, alpha)

    def _level(self, resolution: int | None) -> int:
        level = growth_levels(resolution or self.image_size)
        if level >= len(self.to_rgb):
            raise ValueError(f"resolution {resolution} is above this generator's image_size {self.image_size}.")
        return level


class ProGANDiscriminator(nn.Module):
    """Images (N, channels, r, r) at any growth resolution r -> one score per image (a linear critic value).

    ``features`` is the output of the 4x4 conv (N, maps at 4x4), before the linear score.
    ``minibatch_group_size``: the groups of the minibatch standard deviation (official code: 4).
    """

    def __init__(
        self, channels: int, image_size: int, width: int = 512, full_width_until: int = 32, minibatch_group_size: int = 4
    ):
        super().__init__()
        self.image_size, self.minibatch_group_size = image_size, minibatch_group_size
        levels = growth_levels(image_size)
        maps = [feature_maps(BASE_RESOLUTION * 2**level, width, full_width_until) for level in range(levels + 1)]
        self.from_rgb = nn.ModuleList(EqualizedConv2d(channels, m, 1) for m in maps)
        # blocks[level - 1] takes maps at resolution 4 * 2^level down to the maps of the resolution below
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualizedConv2d(maps[level], maps[level], 3), EqualizedConv2d(maps[level], maps[level - 1], 3)])
            for level in range(1, levels + 1)
        )
        self.final_conv = EqualizedConv2d(maps[0] + 1, maps[0], 3)
        self.final_dense = EqualizedConv2d(maps[0], maps[0], BASE_RESOLUTION, padding=0)  # 4x4 conv on 4x4 = dense
        self.score = EqualizedLinear(maps[0], 1, gain=1.0)

    def grown_in(self, x: Tensor, alpha: float = 1.0) -> Tensor:
        """The hidden maps at half the input's resolution (at 4x4 inputs: their ``from_rgb`` maps): the newest block
        on ``from_rgb(x)``, faded in by ``alpha`` over ``from_rgb`` of the 2x-downsampled images (Fig. 2, mirrored)."""
        level = self._level(x)
        h = _act(self.from_rgb[level](x))
        if level == 0:
            return h
        h = self._block(level, h)
        if alpha >= 1:
            return h
        return fade(_act(self.from_rgb[level - 1](downsample(x))), h, alpha)

    def features(self, x: Tensor, labels: Tensor | None = None, alpha: float = 1.0) -> Tensor:
        level = self._level(x)
        h = self.grown_in(x, alpha)
        for below in range(level - 1, 0, -1):
            h = self._block(below, h)
        h = _act(self.final_conv(minibatch_stddev(h, self.minibatch_group_size)))
        return _act(self.final_dense(h)).flatten(1)

    def forward(self, x: Tensor, labels: Tensor | None = None, alpha: float = 1.0) -> Tensor:
        """(N,) critic values; ``labels`` is accepted for the discriminator contract and ignored (unconditional)."""
        return self.score(self.features(x, alpha=alpha)).squeeze(1)

    def _block(self, level: int, h: Tensor) -> Tensor:
        for conv in self.blocks[level - 1]:
            h = _act(conv(h))
        return downsample(h)

    def _level(self, x: Tensor) -> int:
        if x.shape[-1] != x.shape[-2] or x.shape[-1] > self.image_size:
            raise ValueError(
                f"The ProGAN discriminator reads square images of 4x4 up to {self.image_size}x{self.image_size}, got "
                f"{tuple(x.shape[-2:])}."
            )
        return growth_levels(x.shape[-1])
