"""Pixel codings: how images in [-1, 1] become categorical variables for the autoregressive models, and back.

A coding turns an image batch ``(N, data_channels, H, W)`` into integer ``indices`` ``(N, channels, H, W)`` with
``levels`` values each (``encode``), back into images in [-1, 1] (``decode``), and into the float input a net reads
(``embed``, ``input_channels`` wide).

- ``UniformCoding(channels, levels)``: each channel quantised to ``levels`` evenly spaced values. ``levels=256``
  is the 8-bit data of the PixelCNN/PixelRNN papers; ``levels=2`` is binarised MNIST (threshold at mid-grey).
- ``PaletteCoding(num_colors)``: one index per pixel into an RGB palette (the Pokémon ``colormap.txt`` or a
  k-means palette). The palette comes from the datamodule (``datamodule.palette``) when training starts and is
  stored in the checkpoint, so a loaded model samples without the data.

Round trips are exact for images that are already in the coding (binarised images, 8-bit images, palette images).
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data.palette import colors_to_images, nearest_color_indices, palette_to_colors


class UniformCoding(nn.Module):
    def __init__(self, channels: int, levels: int = 256):
        super().__init__()
        if levels < 2:
            raise ValueError(f"a uniform pixel coding needs levels >= 2, got {levels}.")
        self.data_channels = self.channels = self.input_channels = channels
        self.levels = levels

    def encode(self, images: Tensor) -> Tensor:
        return ((images.clamp(-1, 1) + 1) / 2 * (self.levels - 1)).round().long()

    def decode(self, indices: Tensor) -> Tensor:
        return indices.float() / (self.levels - 1) * 2 - 1

    def embed(self, indices: Tensor) -> Tensor:
        return self.decode(indices)

    def adapt(self, datamodule) -> None:
        """Nothing to learn from the data."""

    def extra_repr(self) -> str:
        return f"channels={self.channels}, levels={self.levels}"


class PaletteCoding(nn.Module):
    def __init__(self, num_colors: int):
        super().__init__()
        if num_colors < 2:
            raise ValueError(f"a palette needs at least 2 colours, got {num_colors}.")
        self.data_channels, self.channels = 3, 1
        self.levels = self.input_channels = num_colors
        # RGB in [-1, 1]; NaN until the datamodule's palette is loaded (or a checkpoint restores it)
        self.register_buffer("colors", torch.full((num_colors, 3), float("nan")))

    @property
    def ready(self) -> bool:
        return not bool(torch.isnan(self.colors).any())

    def set_palette(self, palette: Tensor) -> None:
        """``palette``: (num_colors, 3) uint8 RGB."""
        if tuple(palette.shape) != (self.levels, 3):
            raise ValueError(
                f"the model was built for a {self.levels}-colour palette but the data has {tuple(palette.shape)[0]} "
                f"colours; set data.num_colors={palette.shape[0]} (the model reads ${{data.num_colors}})."
            )
        self.colors.copy_(palette_to_colors(palette.to(self.colors.device)))

    def adapt(self, datamodule) -> None:
        palette = getattr(datamodule, "palette", None)
        if palette is None:
            raise ValueError(
                f"this model codes pixels as palette indices but {type(datamodule).__name__} has no palette; use "
                "palette data (data=pokemon, data=folder_palette, data=cifar10_palette) or a uniform coding."
            )
        self.set_palette(palette)

    def _check(self) -> None:
        if not self.ready:
            raise RuntimeError(
                "the palette is not set yet: it is loaded from the datamodule when training starts (or from a "
                "checkpoint); call model.coding.set_palette(colors) to use an untrained model."
            )

    # encode/decode are the datamodules' mapping (genlab.data.palette) on this buffer, in the (N, 1, H, W) index layout
    # of a one-channel coding: a palette image the data yields decodes back to itself bit for bit.
    def encode(self, images: Tensor) -> Tensor:
        """Nearest palette colour per pixel (exact for images made of palette colours); memory bounded per call."""
        self._check()
        return nearest_color_indices(images, self.colors)[:, None]

    def decode(self, indices: Tensor) -> Tensor:
        self._check()
        return colors_to_images(indices[:, 0], self.colors)

    def embed(self, indices: Tensor) -> Tensor:
        return F.one_hot(indices[:, 0], self.levels).permute(0, 3, 1, 2).float()

    def extra_repr(self) -> str:
        return f"num_colors={self.levels}"


def pixel_coding(channels: int, levels: int = 2, palette_size: int | None = None) -> nn.Module:
    """The coding a model config asks for: a palette when the data has one (``palette_size`` =
    ``${oc.select:data.num_colors,null}``), otherwise ``levels`` uniform levels per channel."""
    if palette_size:
        return PaletteCoding(palette_size)
    return UniformCoding(channels, levels)
