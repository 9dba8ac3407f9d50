"""Recurrent autoregressive image nets.

``RasterLSTM`` is the model of the Pokémon-creation seed (NTU ML 2016): one LSTM layer (512 cells) reads the
image as one long raster-scan sequence of 1-of-N pixels and predicts the next pixel. It ignores 2-D geometry
(pixel ``(i, j)`` reaches ``(i + 1, j)`` only through ``W`` recurrent steps), which is what the Row LSTM fixes.

``RowLSTM`` is the Row LSTM of van den Oord et al. 2016 (Sec. 3.1, Table 4): a 7x7 mask A convolution, then Row
LSTM layers that process the image one row at a time with a 1x3 input-to-state convolution (mask B) and a 1x3
state-to-state convolution over the previous row's hidden state, with residual connections, then two 1x1 mask B
convolutions. Its receptive field is the triangle above a pixel plus the pixels to its left.

Both map an embedded image ``(N, in_channels, H, W)`` to logits ``(N, levels, channels, H, W)`` like the PixelCNN.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.nets.masked import LogitsHead, MaskedConv2d, _check_width


class RasterLSTM(nn.Module):
    """LSTM over the raster-scan pixel sequence: the input at step ``t`` is pixel ``t - 1`` (a start marker at
    ``t = 0``), the output is a ``levels``-way softmax for each data channel of pixel ``t``.

    The data channels of one pixel are predicted independently given all previous pixels (exact for palette data,
    which has one channel; a valid but weaker factorisation for RGB with 256 levels).
    """

    def __init__(
        self, in_channels: int, channels: int, levels: int, hidden: int = 512, layers: int = 1, num_classes: int = 0
    ):
        super().__init__()
        self.channels, self.levels, self.num_classes = channels, levels, num_classes
        self.in_channels = in_channels
        # +1: a start marker channel, so the first step's input differs from any real pixel
        self.lstm = nn.LSTM(in_channels + 1 + num_classes, hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, levels * channels)

    def _inputs(self, pixels: Tensor, labels: Tensor | None, start: bool) -> Tensor:
        """(N, T, in_channels) pixels -> LSTM inputs with the start-marker and one-hot label channels."""
        n, t, _ = pixels.shape
        marker = torch.zeros(n, t, 1, device=pixels.device, dtype=pixels.dtype)
        if start:
            marker[:, 0] = 1
        parts = [pixels, marker]
        if self.num_classes:
            if labels is None:
                raise ValueError("this RasterLSTM is class-conditional: pass labels.")
            parts.append(F.one_hot(labels, self.num_classes).to(pixels.dtype)[:, None].expand(n, t, -1))
        return torch.cat(parts, dim=2)

    def _logits(self, out: Tensor) -> Tensor:
        n, t, _ = out.shape
        return self.out(out).view(n, t, self.levels, self.channels)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        n, _, height, width = x.shape
        sequence = x.flatten(2).transpose(1, 2)  # (N, HW, in_channels), raster order
        shifted = torch.cat([torch.zeros_like(sequence[:, :1]), sequence[:, :-1]], dim=1)
        out, _ = self.lstm(self._inputs(shifted, labels, start=True))
        logits = self._logits(out)  # (N, HW, levels, channels)
        return logits.permute(0, 2, 3, 1).reshape(n, self.levels, self.channels, height, width)

    @torch.no_grad()
    def fill(
        self,
        indices: Tensor,
        start: int,
        embed: Callable[[Tensor], Tensor],
        draw: Callable[[Tensor], Tensor],
        labels: Tensor | None = None,
    ) -> Tensor:
        """Sample pixels ``start, start + 1, ...`` (raster index) of ``indices`` (N, channels, H, W) in place, one
        LSTM step each: the prefix is read once, then the state is carried. ``embed`` maps (N, channels, H, W)
        indices to net inputs; ``draw`` maps (N, levels) logits to (N,) sampled values."""
        n, _, height, width = indices.shape
        sequence = embed(indices).flatten(2).transpose(1, 2)
        prefix = torch.cat([torch.zeros_like(sequence[:, :1]), sequence[:, :start]], dim=1)
        out, state = self.lstm(self._inputs(prefix, labels, start=True))
        flat = indices.view(n, self.channels, height * width)
        for t in range(start, height * width):
            logits = self._logits(out[:, -1:])[:, 0]  # (N, levels, channels)
            for c in range(self.channels):
                flat[:, c, t] = draw(logits[:, :, c])
            if t + 1 < height * width:
                pixel = embed(flat[:, :, t, None, None]).flatten(1)[:, None]
                out, state = self.lstm(self._inputs(pixel, labels, start=False), state)
        return indices


class RowLSTMLayer(nn.Module):
    """One Row LSTM layer: gates ``[o, f, i, g] = K_ss * h_{row-1} + K_is * x_row``, with the input-to-state part
    (1 x k, mask B) computed for the whole image at once and the state-to-state part (1 x k) row by row."""

    def __init__(self, hidden: int, state: int, groups: int, kernel_size: int = 3, num_classes: int = 0):
        super().__init__()
        self.state = state
        self.input_to_state = MaskedConv2d(hidden, 4 * state, (1, kernel_size), "B", groups)
        self.state_to_state = nn.Conv1d(state, 4 * state, kernel_size, padding=kernel_size // 2)
        self.output = MaskedConv2d(state, hidden, 1, "B", groups)
        self.condition = nn.Embedding(num_classes, 4 * state) if num_classes else None

    def gates_in(self, x: Tensor, labels: Tensor | None) -> Tensor:
        gates = self.input_to_state(x)
        if self.condition is not None:
            gates = gates + self.condition(labels)[:, :, None, None]
        return gates

    def step(self, gates_in_row: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """One row: (N, 4 * state, W) input-to-state gates and the previous row's (h, c) -> this row's (h, c)."""
        o, f, g_in, g = (gates_in_row + self.state_to_state(h)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(g_in) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def initial_state(self, x: Tensor) -> tuple[Tensor, Tensor]:
        zeros = x.new_zeros(x.shape[0], self.state, x.shape[-1])
        return zeros, zeros

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        gates_in = self.gates_in(x, labels)
        h, c = self.initial_state(x)
        rows = []
        for i in range(x.shape[2]):
            h, c = self.step(gates_in[:, :, i], h, c)
            rows.append(h)
        return x + self.output(torch.stack(rows, dim=2))


class RowLSTM(nn.Module):
    """Row LSTM net (paper Table 4): 7x7 conv mask A, ``layers`` residual Row LSTM layers, ReLU-1x1-ReLU-1x1 head."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        levels: int,
        hidden: int = 32,
        layers: int = 2,
        state: int | None = None,
        kernel_size: int = 3,
        num_classes: int = 0,
    ):
        super().__init__()
        state = state or hidden
        _check_width("hidden", hidden, channels)
        _check_width("state", state, channels)
        self.channels, self.levels, self.num_classes = channels, levels, num_classes
        self.first = MaskedConv2d(in_channels, hidden, 7, "A", channels)
        self.layers = nn.ModuleList(RowLSTMLayer(hidden, state, channels, kernel_size, num_classes) for _ in range(layers))
        self.head = LogitsHead(hidden, hidden, levels, channels)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes and labels is None:
            raise ValueError("this RowLSTM is class-conditional: pass labels.")
        h = self.first(x)
        for layer in self.layers:
            h = layer(h, labels if self.num_classes else None)
        return self.head(h)

    def _row(self, x: Tensor, i: int, states: list[tuple[Tensor, Tensor]], labels: Tensor | None):
        """Logits (N, levels, channels, W) of row ``i`` from the embedded rows ``<= i`` and each layer's state
        after row ``i - 1``; also returns each layer's state after row ``i``."""
        reach = self.first.kernel_size[0] // 2
        h = self.first(x[:, :, max(0, i - reach) : i + 1])[:, :, -1:]  # (N, hidden, 1, W)
        new_states = []
        for layer, (h_prev, c_prev) in zip(self.layers, states):
            h_state, c_state = layer.step(layer.gates_in(h, labels)[:, :, 0], h_prev, c_prev)
            new_states.append((h_state, c_state))
            h = h + layer.output(h_state[:, :, None])
        return self.head(h)[:, :, :, 0], new_states

    @torch.no_grad()
    def fill(
        self,
        indices: Tensor,
        start: int,
        embed: Callable[[Tensor], Tensor],
        draw: Callable[[Tensor], Tensor],
        labels: Tensor | None = None,
    ) -> Tensor:
        """Sample raster pixels ``>= start`` of ``indices`` in place, carrying each layer's row state: a pixel costs
        one row of computation instead of a pass over the image."""
        if self.num_classes and labels is None:
            raise ValueError("this RowLSTM is class-conditional: pass labels.")
        labels = labels if self.num_classes else None
        height, width = indices.shape[-2:]
        x = embed(indices)
        states = [layer.initial_state(x) for layer in self.layers]
        for i in range(height):
            for j in range(max(0, start - i * width), width):
                for c in range(self.channels):
                    logits, _ = self._row(x, i, states, labels)
                    indices[:, c, i, j] = draw(logits[:, :, c, j])
                    x[:, :, i : i + 1] = embed(indices[:, :, i : i + 1])
            _, states = self._row(x, i, states, labels)
        return indices
