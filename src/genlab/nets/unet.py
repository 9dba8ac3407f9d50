"""pix2pix's U-Net generator (Isola et al. 2017, Sec. 3.2.1 and Appendix 6.1.1).

An encoder-decoder whose i-th decoder layer also reads the (n-i)-th encoder layer's output (skip connections), so
the low-level detail a translation shares with its input (edges, layout) need not squeeze through the bottleneck.
The official ``UnetGenerator`` / ``UnetSkipConnectionBlock`` (junyanz/pytorch-CycleGAN-and-pix2pix,
``models/networks.py``): ``num_downs`` 4x4 stride-2 convs halve the image down to 1x1, with widths ``width``,
2x, 4x, then 8x for the rest; LeakyReLU(0.2) down, ReLU up, norm after every conv except the outermost down, the
innermost down and the output; Tanh out. ``unet_256`` is ``num_downs=8``; here ``num_downs = log2(image_size)``, so
256 px is exactly U-Net-256 and 32 px is the same design five levels deep.

Dropout 0.5 is pix2pix's only noise ("we provide noise only in the form of dropout"): the official code puts it in
the ``num_downs - 5`` 8x-wide blocks next to the innermost one (3 for U-Net-256, 2 for U-Net-128). Below 64 px that
count would be zero, so at least one block keeps it (``dropout_blocks``).
"""

import math

import torch
from torch import Tensor, nn

from genlab.nets.init import normal_init
from genlab.nets.patchgan import norm_layer


class SkipBlock(nn.Module):
    """One U-Net level: down-conv, the inner levels (``inner``), up-conv; its output is [input, up] (the skip
    connection), except at the outermost level, which returns the image."""

    def __init__(self, outer: int, inner_width: int, inner: nn.Module | None, norm: str, dropout: float = 0.0,
                 in_channels: int | None = None, outermost: bool = False):
        super().__init__()
        bias = norm != "batch"  # BatchNorm's shift makes a conv bias redundant (as the official code)
        in_channels = outer if in_channels is None else in_channels
        down_conv = nn.Conv2d(in_channels, inner_width, 4, 2, 1, bias=bias)
        up_in = inner_width if inner is None else 2 * inner_width  # the inner level returns [its input, its output]
        if outermost:
            down = [down_conv]
            up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, 2, 1), nn.Tanh()]
        elif inner is None:  # innermost: no norm on the 1x1 bottleneck
            down = [nn.LeakyReLU(0.2, True), down_conv]
            up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias), norm_layer(norm, outer)]
        else:
            down = [nn.LeakyReLU(0.2, True), down_conv, norm_layer(norm, inner_width)]
            up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias), norm_layer(norm, outer)]
            if dropout:
                up.append(nn.Dropout(dropout))
        self.outermost = outermost
        self.model = nn.Sequential(*down, *([inner] if inner is not None else []), *up)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """Source images (N, in_channels, S, S) -> translations (N, out_channels, S, S) in [-1, 1]; S a power of 2.

    Args:
        in_channels / out_channels: of the source (``data.source_channels``) and the target (``data.channels``).
        image_size: S; ``num_downs = log2(S)`` levels take it down to 1x1 (8 = the official U-Net-256).
        width: channels of the outermost level (the official ``ngf``, 64).
        norm: ``batch`` (pix2pix), ``instance`` or ``none``.
        dropout: the probability in the dropout blocks (0.5; 0 turns dropout off, the official ``--no_dropout``).
        dropout_blocks: how many blocks next to the innermost have dropout; ``None``: the official
            ``num_downs - 5``, at least 1.
    """

    def __init__(self, in_channels: int, out_channels: int, image_size: int, width: int = 64, norm: str = "batch",
                 dropout: float = 0.5, dropout_blocks: int | None = None):
        super().__init__()
        num_downs = int(round(math.log2(image_size))) if image_size > 0 else 0
        if image_size < 8 or 2**num_downs != image_size:
            raise ValueError(
                f"UnetGenerator needs image_size a power of 2, at least 8 (it halves the image down to 1x1), got "
                f"{image_size}; set data.image_size to 32, 64, 128 or 256."
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"UnetGenerator dropout is a probability in [0, 1), got {dropout}.")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.image_size = image_size
        self.num_downs = num_downs
        self.dropout_blocks = max(1, num_downs - 5) if dropout_blocks is None else dropout_blocks
        if not 0 <= self.dropout_blocks <= num_downs - 2:
            raise ValueError(
                f"UnetGenerator dropout_blocks must be in 0..{num_downs - 2} (the levels between the innermost and "
                f"the outermost at {image_size} px), got {dropout_blocks}."
            )
        # outer widths from the image inwards: width, 2, 4, 8, 8, ... x width; level i maps widths[i] -> widths[i + 1]
        widths = [width * min(2**i, 8) for i in range(num_downs)]
        block = SkipBlock(widths[-2], widths[-1], None, norm)  # innermost: the 1x1 bottleneck
        for level in range(num_downs - 2, 0, -1):
            with_dropout = dropout if num_downs - 1 - level <= self.dropout_blocks else 0.0
            block = SkipBlock(widths[level - 1], widths[level], block, norm, with_dropout)
        self.model = SkipBlock(out_channels, widths[0], block, norm, in_channels=in_channels, outermost=True)
        normal_init(self)  # N(0, 0.02), as init_type='normal' in the official code

    def forward(self, source: Tensor) -> Tensor:
        if source.dim() != 4 or source.shape[1] != self.in_channels or source.shape[-2:] != (self.image_size,) * 2:
            raise ValueError(
                f"UnetGenerator expects (N, {self.in_channels}, {self.image_size}, {self.image_size}) sources, got "
                f"{tuple(source.shape)}."
            )
        return self.model(source)
