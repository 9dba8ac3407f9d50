"""Masked convolutions and PixelCNN nets (van den Oord et al. 2016, "Pixel Recurrent Neural Networks" Sec. 3.4, and
"Conditional Image Generation with PixelCNN Decoders" for the gated blocks).

Raster order is row by row, left to right; inside a pixel the data channels are ordered R, G, B. A masked kernel
lets an output see every input position strictly before its own pixel plus, at its own pixel, the channel groups
before its own (mask A, the first layer) or up to and including its own (mask B, every later layer).

Channel groups are interleaved: feature ``f`` belongs to data channel ``f % groups``. Interleaving (rather than
contiguous blocks) keeps the group of a feature when a tensor is split into halves (gates) or quarters (LSTM
gates), as long as each part has a multiple of ``groups`` features, so the masks stay valid through those splits.

Every net maps an embedded image ``(N, in_channels, H, W)`` to logits ``(N, levels, channels, H, W)``: one
``levels``-way softmax per data channel and pixel. Logits at row ``i`` depend only on input rows ``<= i``, so a
naive sampler may run the net on the rows it has so far. ``PixelCNN.fill`` samples with per-layer caches
(``genlab.nets.incremental``), computing each activation once instead of rerunning the net for every pixel.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.nets.incremental import fill_cached, gate


def causal_mask(out_channels: int, in_channels: int, kernel_size: tuple[int, int], mask_type: str, groups: int = 1) -> Tensor:
    """The 0/1 weight mask of shape ``(out, in, kh, kw)`` for ``mask_type`` 'A' or 'B'."""
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' (first layer: excludes the current pixel) or 'B', got {mask_type!r}.")
    kh, kw = kernel_size
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"masked convolutions need odd kernel sizes so the current pixel is the centre, got {kernel_size}.")
    ci, cj = kh // 2, kw // 2
    mask = torch.ones(out_channels, in_channels, kh, kw)
    mask[:, :, ci + 1 :, :] = 0
    mask[:, :, ci, cj + 1 :] = 0
    out_group = torch.arange(out_channels) % groups
    in_group = torch.arange(in_channels) % groups
    allowed = in_group[None, :] < out_group[:, None] if mask_type == "A" else in_group[None, :] <= out_group[:, None]
    mask[:, :, ci, cj] = allowed.float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """``nn.Conv2d`` with a causal mask on the weight and 'same' padding (odd kernels only)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        mask_type: str,
        groups: int = 1,
        bias: bool = True,
    ):
        kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        super().__init__(in_channels, out_channels, kernel, padding=(kernel[0] // 2, kernel[1] // 2), bias=bias)
        if groups > 1 and out_channels % groups:
            raise ValueError(f"out_channels={out_channels} must be a multiple of the {groups} data channels.")
        self.mask_type = mask_type
        self.register_buffer("mask", causal_mask(out_channels, in_channels, kernel, mask_type, groups), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding)


class LogitsHead(nn.Sequential):
    """The output stack of the PixelCNN and PixelRNN nets (van den Oord et al. 2016a): ReLU, 1x1 conv mask B, ReLU,
    1x1 conv mask B; (N, hidden, H, W) -> logits (N, levels, channels, H, W)."""

    def __init__(self, hidden: int, head_hidden: int, levels: int, channels: int):
        super().__init__(
            nn.ReLU(),
            MaskedConv2d(hidden, head_hidden, 1, "B", channels),
            nn.ReLU(),
            MaskedConv2d(head_hidden, levels * channels, 1, "B", channels),
        )
        self.levels, self.channels = levels, channels

    def forward(self, h: Tensor) -> Tensor:
        logits = super().forward(h)  # feature l * channels + c: level l of data channel c
        n, _, height, width = logits.shape
        return logits.view(n, self.levels, self.channels, height, width)


def _check_width(name: str, width: int, groups: int) -> None:
    if width % groups:
        raise ValueError(f"{name}={width} must be a multiple of the number of data channels ({groups}).")


class ResidualBlock(nn.Module):
    """PixelCNN residual block (paper Fig. 5): 1x1 (2h -> h), 3x3 mask B, 1x1 (h -> 2h), each after a ReLU."""

    def __init__(self, hidden: int, groups: int, num_classes: int = 0):
        super().__init__()
        inner = hidden // 2
        self.reduce = MaskedConv2d(hidden, inner, 1, "B", groups)
        self.conv = MaskedConv2d(inner, inner, 3, "B", groups)
        self.expand = MaskedConv2d(inner, hidden, 1, "B", groups)
        self.condition = nn.Embedding(num_classes, inner) if num_classes else None

    def forward(self, x: Tensor, labels: Tensor | None) -> Tensor:
        h = self.conv(F.relu(self.reduce(F.relu(x))))
        if self.condition is not None:
            h = h + self.condition(labels)[:, :, None, None]
        return x + self.expand(F.relu(h))


class GatedBlock(nn.Module):
    """Gated PixelCNN layer: a vertical stack (rows above) feeding a horizontal stack (row so far), no blind spot.

    The vertical convolution at row ``i`` covers rows ``i - k//2 .. i``; it reaches the horizontal stack only after a
    one-row shift down, so the horizontal stack at row ``i`` sees the vertical features of rows ``< i`` only.
    """

    def __init__(self, in_channels: int, hidden: int, kernel_size: int, mask_type: str, groups: int, num_classes: int = 0):
        super().__init__()
        self.residual = mask_type == "B" and in_channels == hidden
        self.kernel_size = kernel_size
        k = kernel_size
        self.vertical = nn.Conv2d(in_channels, 2 * hidden, (k // 2 + 1, k))
        self.vertical_to_horizontal = nn.Conv2d(2 * hidden, 2 * hidden, 1)
        self.horizontal = MaskedConv2d(in_channels, 2 * hidden, (1, k), mask_type, groups)
        self.horizontal_out = MaskedConv2d(hidden, hidden, 1, "B", groups)
        self.condition = nn.Embedding(num_classes, 4 * hidden) if num_classes else None

    def forward(self, v: Tensor, h: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor]:
        k = self.kernel_size
        v_pre = self.vertical(F.pad(v, (k // 2, k // 2, k // 2, 0)))
        shifted = F.pad(v_pre, (0, 0, 1, 0))[:, :, :-1]
        h_pre = self.horizontal(h) + self.vertical_to_horizontal(shifted)
        if self.condition is not None:
            cv, ch = self.condition(labels)[:, :, None, None].chunk(2, dim=1)
            v_pre, h_pre = v_pre + cv, h_pre + ch
        h_out = self.horizontal_out(gate(h_pre))
        return gate(v_pre), h + h_out if self.residual else h_out


class PixelCNN(nn.Module):
    """PixelCNN over ``channels`` categorical variables per pixel with ``levels`` values each.

    ``gated=False``: the paper's PixelCNN (7x7 mask A conv, residual blocks of 3x3 mask B convs, two 1x1 convs).
    ``gated=True``: Gated PixelCNN blocks (vertical + horizontal stacks, tanh x sigmoid gates, residual
    horizontal stack). ``num_classes > 0`` adds a learned per-class bias to every block (class-conditional).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        levels: int,
        hidden: int = 64,
        blocks: int = 6,
        gated: bool = True,
        kernel_size: int = 7,
        head_hidden: int | None = None,
        num_classes: int = 0,
    ):
        super().__init__()
        _check_width("hidden", hidden, channels)
        if not gated:
            _check_width("hidden // 2", hidden // 2, channels)
        head_hidden = head_hidden or hidden
        self.channels, self.levels, self.gated, self.num_classes = channels, levels, gated, num_classes
        if gated:
            self.first = GatedBlock(in_channels, hidden, kernel_size, "A", channels, num_classes)
            self.blocks = nn.ModuleList(GatedBlock(hidden, hidden, 3, "B", channels, num_classes) for _ in range(blocks))
        else:
            self.first = MaskedConv2d(in_channels, hidden, kernel_size, "A", channels)
            self.blocks = nn.ModuleList(ResidualBlock(hidden, channels, num_classes) for _ in range(blocks))
        self.head = LogitsHead(hidden, head_hidden, levels, channels)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes and labels is None:
            raise ValueError("this PixelCNN is class-conditional: pass labels.")
        labels = labels if self.num_classes else None
        if self.gated:
            v, h = self.first(x, x, labels)
            for block in self.blocks:
                v, h = block(v, h, labels)
        else:
            h = self.first(x)
            for block in self.blocks:
                h = block(h, labels)
        return self.head(h)

    def fill(
        self,
        indices: Tensor,
        start: int,
        embed: Callable[[Tensor], Tensor],
        draw: Callable[[Tensor], Tensor],
        labels: Tensor | None = None,
    ) -> Tensor:
        """Sample raster pixels ``>= start`` of ``indices`` (N, channels, H, W) in place with per-layer caches:
        each activation is computed once, so a pixel costs one position of every layer, not a pass over the image.
        ``embed`` maps indices to net inputs; ``draw`` maps (N, levels) logits to (N,) sampled values."""
        if self.num_classes and labels is None:
            raise ValueError("this PixelCNN is class-conditional: pass labels.")
        return fill_cached(self, indices, start, embed, draw, labels if self.num_classes else None)
