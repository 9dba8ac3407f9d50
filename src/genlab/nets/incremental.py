"""Cached generation for the PixelCNN nets (Ramachandran et al. 2017, "Fast Generation for Convolutional
Autoregressive Models"): every layer computes its output at the new pixel only, reading its input at earlier
pixels from a cache of the rows its causal kernel can see.

Why this is exact: a layer's output at pixel ``p`` depends only on its input at pixels ``<= p`` in raster order
(masks A and B), so once computed it never changes while later pixels are drawn. The naive sampler recomputes all
of those unchanged activations for every pixel; here each is computed once. Inside a pixel, channel ``c`` is drawn
after its column is recomputed with channels ``< c`` in place, as the masks' channel groups require. The Gated
PixelCNN's vertical stack at row ``i`` reads the whole row ``i`` and reaches the horizontal stack only one row
down, so it is computed once per row, when the row is complete.

The arithmetic is the nets' own (same weights, masks, biases, additions in the same order), but a convolution at one
position is a matrix product here and a strided kernel in the net, so logits can differ in the last bits; the draws
are the same uniforms in the same order, so the samples match the naive sampler's unless a uniform lands within
rounding of a category boundary (tests/test_fast_sampling.py checks them bit for bit).
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def gate(x: Tensor) -> Tensor:
    """tanh(a) * sigmoid(b) over the two halves of the features (dim 1): the Gated PixelCNN's non-linearity."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def causal_matrix(conv: nn.Conv2d) -> tuple[Tensor, Tensor | None]:
    """A masked convolution at one pixel as a matrix product: its kernel rows up to the centre (the rows below are
    masked out), flattened in the (in, row, column) order of :meth:`RowCache.window`. At one position a matrix product
    is far cheaper than a convolution call, whose per-call set-up dominates there."""
    rows = conv.kernel_size[0] // 2 + 1
    return (conv.weight * conv.mask)[:, :, :rows].flatten(1), conv.bias


class RowCache:
    """One layer's input over the last ``rows`` rows (the last is the current row), zero-padded by ``pad`` columns
    on each side: what a causal kernel ``rows`` high and ``2 * pad + 1`` wide reads. It starts as zeros, the padding
    above the image."""

    def __init__(self, like: Tensor, channels: int, rows: int, width: int, pad: int):
        self.pad, self.width = pad, width
        self.data = like.new_zeros(like.shape[0], channels, rows, width + 2 * pad)

    def next_row(self) -> None:
        self.data = torch.cat([self.data[:, :, 1:], torch.zeros_like(self.data[:, :, :1])], dim=2)

    def push_row(self, row: Tensor) -> None:
        """Append a complete row (N, C, 1, W)."""
        self.next_row()
        self.data[:, :, -1:, self.pad : self.pad + self.width] = row

    def write(self, j: int, value: Tensor) -> None:
        """Set column ``j`` of the current row to ``value`` (N, C)."""
        self.data[:, :, -1, self.pad + j] = value

    def window(self, j: int) -> Tensor:
        """(N, C * rows * (2 pad + 1)): the inputs a kernel centred on column ``j`` of the current row reads."""
        return self.data[:, :, :, j : j + 2 * self.pad + 1].flatten(1)


class CachedHead:
    """The nets' head (ReLU, 1x1 mask B, ReLU, 1x1 mask B) at one pixel: (N, hidden) -> (N, levels * channels)."""

    def __init__(self, head: nn.Sequential):
        self.hidden, self.out = causal_matrix(head[1]), causal_matrix(head[3])

    def __call__(self, h: Tensor) -> Tensor:
        return F.linear(F.relu(F.linear(F.relu(h), *self.hidden)), *self.out)


class CachedResidualStack:
    """The PixelCNN of the 2016 paper (7x7 mask A, residual blocks with a 3x3 mask B conv): one cache for the
    first layer's input and one for each block's 3x3 conv; the 1x1 convs need none."""

    def __init__(self, net: nn.Module, like: Tensor, in_channels: int, width: int, labels: Tensor | None):
        kh, kw = net.first.kernel_size
        self.first, self.input = causal_matrix(net.first), RowCache(like, in_channels, kh // 2 + 1, width, kw // 2)
        self.conv_in = [RowCache(like, block.conv.in_channels, 2, width, 1) for block in net.blocks]
        self.blocks = [
            (causal_matrix(block.reduce), causal_matrix(block.conv), causal_matrix(block.expand),
             block.condition(labels) if block.condition is not None else None)
            for block in net.blocks
        ]

    def next_row(self) -> None:
        for cache in (self.input, *self.conv_in):
            cache.next_row()

    def features_at(self, j: int) -> Tensor:
        """The last block's output (N, hidden) at column ``j`` of the current row."""
        h = F.linear(self.input.window(j), *self.first)
        for (reduce, conv, expand, bias), cache in zip(self.blocks, self.conv_in):
            cache.write(j, F.relu(F.linear(F.relu(h), *reduce)))
            inner = F.linear(cache.window(j), *conv)
            if bias is not None:
                inner = inner + bias
            h = h + F.linear(F.relu(inner), *expand)
        return h


class CachedGatedStack:
    """The Gated PixelCNN: per layer, the vertical stack's input over the rows its kernel covers (filled a row at a
    time), the horizontal stack's input over the current row (filled pixel by pixel) and the vertical features of
    the row above, already through the 1x1 link into the horizontal stack."""

    def __init__(self, net: nn.Module, like: Tensor, in_channels: int, width: int, labels: Tensor | None):
        self.layers = [net.first, *net.blocks]
        widths = [in_channels] + [block.horizontal_out.out_channels for block in self.layers[:-1]]
        pads = [block.kernel_size // 2 for block in self.layers]
        self.vertical_in = [RowCache(like, c, pad + 1, width, pad) for c, pad in zip(widths, pads)]
        self.horizontal_in = [RowCache(like, c, 1, width, pad) for c, pad in zip(widths, pads)]
        self.input = self.horizontal_in[0]
        self.horizontal = [causal_matrix(block.horizontal) for block in self.layers]
        self.horizontal_out = [causal_matrix(block.horizontal_out) for block in self.layers]
        self.biases = [
            block.condition(labels)[:, :, None, None].chunk(2, dim=1) if block.condition is not None else None
            for block in self.layers
        ]
        # row 0 of the horizontal stack sees the zero padding above the image through the link
        zeros = like.new_zeros(like.shape[0], self.layers[0].vertical.out_channels, 1, width)
        self.from_above = [block.vertical_to_horizontal(zeros) for block in self.layers]

    def next_row(self) -> None:
        for cache in self.horizontal_in:
            cache.next_row()

    def end_row(self, row: Tensor) -> None:
        """Row (N, in, 1, W) of the input is complete: run the vertical stack over it, for the row below."""
        v = row
        for index, (block, cache) in enumerate(zip(self.layers, self.vertical_in)):
            cache.push_row(v)
            v_pre = block.vertical(cache.data)
            self.from_above[index] = block.vertical_to_horizontal(v_pre)
            if self.biases[index] is not None:
                v_pre = v_pre + self.biases[index][0]
            v = gate(v_pre)

    def features_at(self, j: int) -> Tensor:
        """The last layer's horizontal output (N, hidden) at column ``j`` of the current row."""
        h = None  # the first layer reads the net input; it has no residual connection (mask A)
        for block, cache, conv, conv_out, above, bias in zip(
            self.layers, self.horizontal_in, self.horizontal, self.horizontal_out, self.from_above, self.biases
        ):
            if h is not None:
                cache.write(j, h)
            h_pre = F.linear(cache.window(j), *conv) + above[:, :, 0, j]
            if bias is not None:
                h_pre = h_pre + bias[1][:, :, 0, 0]
            h_out = F.linear(gate(h_pre), *conv_out)
            h = h + h_out if block.residual else h_out
        return h


@torch.no_grad()
def fill_cached(
    net: nn.Module,
    indices: Tensor,
    start: int,
    embed: Callable[[Tensor], Tensor],
    draw: Callable[[Tensor], Tensor],
    labels: Tensor | None = None,
) -> Tensor:
    """Sample raster pixels ``>= start`` of ``indices`` (N, channels, H, W) in place with a ``PixelCNN``; pixels
    before ``start`` are read through the same caches (completion). ``embed`` maps indices to net inputs, ``draw``
    (N, levels) logits to (N,) values, called once per pixel and channel in raster order, as the naive sampler."""
    n, channels, height, width = indices.shape
    in_channels = embed(indices[:1, :, :1, :1]).shape[1]
    like = indices.new_zeros(n, 1, dtype=net.head[-1].weight.dtype)
    stack = (CachedGatedStack if net.gated else CachedResidualStack)(net, like, in_channels, width, labels)
    head = CachedHead(net.head)
    for i in range(height):
        stack.next_row()
        for j in range(width):
            stack.input.write(j, embed(indices[:, :, i : i + 1, j : j + 1])[:, :, 0, 0])
            if i * width + j < start:  # a given pixel: only fill the caches
                stack.features_at(j)
                continue
            for c in range(channels):
                logits = head(stack.features_at(j)).view(n, net.levels, channels)
                indices[:, c, i, j] = draw(logits[:, :, c])
                stack.input.write(j, embed(indices[:, :, i : i + 1, j : j + 1])[:, :, 0, 0])
        if net.gated:
            stack.end_row(embed(indices[:, :, i : i + 1]))
    return indices
