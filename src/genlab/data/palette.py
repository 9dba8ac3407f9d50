"""Palette-index images: the Pokémon-creation format of the seed (NTU ML 2016) and a k-means palette quantiser.

On disk (``data=pokemon data.root=DIR``):
- ``DIR/pixel_color.txt``: one image per line, ``image_size**2`` palette indices (400 for 20x20) in raster order,
  separated by commas and/or whitespace;
- ``DIR/colormap.txt``: one ``R G B`` line (0..255, whitespace or commas) per palette index; line 1 is index 0.

The datamodules follow the data contract: they yield RGB images in [-1, 1] made only of palette colours (so GANs,
VAEs, grids and metrics work unchanged) and expose ``palette`` (``(num_colors, 3)`` uint8), which the
autoregressive models' palette coding reads to turn the images back into indices exactly. The mapping itself
(uint8 palette -> colours in [-1, 1], indices -> images, images -> nearest-colour indices) lives here once and
``genlab.coding.PaletteCoding`` calls it on its colour buffer.

``kmeans_palette`` + ``PaletteQuantizedDataModule`` turn any RGB image datamodule into palette images, e.g. the
seed's recipe of 167 colours for 20x20 Pokémon sprites from the original 40x40 images (``data=folder_palette``).
"""

import math
import re
from pathlib import Path

import torch
from torch.utils.data import Dataset, TensorDataset

from genlab.data.base import ImageDataModule

SOURCE_HINT = "the seed's files are at speech.ee.ntu.edu.tw/~tlkagk/courses/ML_2016/Pokemon_creation/"
_SEPARATORS = re.compile(r"[,\s]+")


class PaletteFormatError(ValueError):
    pass


def _fields(line: str) -> list[str]:
    return [f for f in _SEPARATORS.split(line.strip()) if f]


def read_colormap(path: str | Path) -> torch.Tensor:
    """``colormap.txt`` -> (num_colors, 3) uint8. Blank lines are ignored; anything else must be three integers."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"palette data: colormap file {path} not found (one 'R G B' line per index; {SOURCE_HINT}).")
    colors = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = _fields(line)
        if not fields:
            continue
        try:
            rgb = [int(float(f)) if float(f).is_integer() else None for f in fields]
        except ValueError:
            rgb = [None]
        if len(fields) != 3 or None in rgb or not all(0 <= v <= 255 for v in rgb):
            raise PaletteFormatError(
                f"{path} line {number}: expected three integers R G B in 0..255, got {line.strip()!r}."
            )
        colors.append(rgb)
    if len(colors) < 2:
        raise PaletteFormatError(f"{path}: a palette needs at least 2 colours, found {len(colors)}.")
    return torch.tensor(colors, dtype=torch.uint8)


def read_pixel_colors(path: str | Path, num_colors: int, image_size: int) -> torch.Tensor:
    """``pixel_color.txt`` -> (N, image_size, image_size) int64 palette indices. Blank lines are ignored."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"palette data: pixel file {path} not found (one image of palette indices per line; {SOURCE_HINT}).")
    expected = image_size * image_size
    images = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = _fields(line)
        if not fields:
            continue
        if len(fields) != expected:
            side = math.isqrt(len(fields))
            hint = f" (that is {side}x{side}: set data.image_size={side})" if side * side == len(fields) else ""
            raise PaletteFormatError(
                f"{path} line {number}: expected {expected} palette indices ({image_size}x{image_size}), "
                f"found {len(fields)}{hint}."
            )
        try:
            values = [int(f) for f in fields]
        except ValueError:
            bad = next(f for f in fields if not f.lstrip("-").isdigit())
            raise PaletteFormatError(f"{path} line {number}: {bad!r} is not an integer palette index.") from None
        low, high = min(values), max(values)
        if low < 0 or high >= num_colors:
            bad = low if low < 0 else high
            raise PaletteFormatError(
                f"{path} line {number}: palette index {bad} is out of range; the colormap has {num_colors} colours "
                f"(indices 0..{num_colors - 1})."
            )
        images.append(values)
    if not images:
        raise PaletteFormatError(f"{path}: no images (the file has no non-blank lines).")
    return torch.tensor(images, dtype=torch.long).view(-1, image_size, image_size)


def write_palette_files(indices: torch.Tensor, palette: torch.Tensor, root: str | Path, separator: str = ",") -> Path:
    """Write (N, H, W) indices and a (K, 3) palette in the Pokémon format (``pixel_color.txt``, ``colormap.txt``)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "colormap.txt").write_text("".join(f"{r} {g} {b}\n" for r, g, b in palette.tolist()))
    rows = indices.reshape(indices.shape[0], -1).tolist()
    (root / "pixel_color.txt").write_text("".join(separator.join(map(str, row)) + "\n" for row in rows))
    return root


# -- the one palette mapping -------------------------------------------------------------------------------------------
# The datamodules (uint8 ``palette``) and ``genlab.coding.PaletteCoding`` (its float ``colors`` buffer, the same table
# in [-1, 1], kept in the checkpoint) both map through the three functions below, so "the image the data yields" and
# "the image the coding decodes" cannot drift apart and a palette image round-trips exactly on either side.

# Elements of the (pixels, K, 3) difference tensor the nearest-colour search holds at once: 2**24 floats = 64 MiB
# whatever the batch, image size or palette (a whole 256-image chunk of 32x32 CIFAR-10 pixels against 167 colours
# would be 525 MiB, and the coding is handed whatever batch the caller has).
NEAREST_COLOR_BUDGET = 2**24


def palette_to_colors(palette: torch.Tensor) -> torch.Tensor:
    """(K, 3) uint8 RGB -> (K, 3) float32 in [-1, 1]: the colour table both the data and the coding use."""
    return palette.float() / 255 * 2 - 1


def colors_to_images(indices: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """(N, H, W) indices + (K, 3) colour table in [-1, 1] -> (N, 3, H, W) images (exactly the table's values)."""
    return colors[indices].permute(0, 3, 1, 2).contiguous()


def nearest_color_indices(images: torch.Tensor, colors: torch.Tensor, budget: int | None = None) -> torch.Tensor:
    """(N, 3, H, W) images + (K, 3) colour table in [-1, 1] -> (N, H, W) index of the nearest colour.

    Exact for images made of table colours (distance 0; ties go to the lowest index). Pixels are searched in chunks
    of ``budget // (3 K)`` (``budget``: :data:`NEAREST_COLOR_BUDGET` when not given, read at call time) so memory
    stays bounded for any batch; each pixel's distances are computed exactly as in one pass, so the chunking never
    changes an index.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        got = images.shape[1] if images.dim() == 4 else f"a tensor of shape {tuple(images.shape)}"
        raise ValueError(f"palette coding needs RGB images (3 channels), got {got}.")
    n, _, height, width = images.shape
    pixels = images.permute(0, 2, 3, 1).reshape(-1, 3)  # (N H W, 3)
    budget = NEAREST_COLOR_BUDGET if budget is None else budget
    step = max(1, budget // (3 * max(1, len(colors))))
    indices = torch.empty(len(pixels), dtype=torch.long, device=images.device)
    for start in range(0, len(pixels), step):
        chunk = pixels[start : start + step]
        indices[start : start + step] = ((chunk[:, None, :] - colors) ** 2).sum(-1).argmin(-1)
    return indices.view(n, height, width)


def indices_to_images(indices: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """(N, H, W) indices + (K, 3) uint8 palette -> (N, 3, H, W) float RGB in [-1, 1]."""
    return colors_to_images(indices, palette_to_colors(palette))


def images_to_indices(images: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) images in [-1, 1] -> (N, H, W) index of the nearest palette colour (exact for palette images)."""
    return nearest_color_indices(images, palette_to_colors(palette.to(images.device)))


def kmeans_palette(
    pixels: torch.Tensor, num_colors: int = 167, iterations: int = 25, max_pixels: int = 200_000, seed: int = 0
) -> torch.Tensor:
    """K-means colour palette of (M, 3) RGB pixels in [-1, 1] -> (num_colors, 3) uint8.

    k-means++ seeding on a random subset of at most ``max_pixels`` pixels, then Lloyd iterations; an emptied
    cluster is re-seeded at the pixel worst served by its centre. Seeded, so a dataset always gets the same palette.
    """
    generator = torch.Generator().manual_seed(seed)
    pixels = pixels.float()
    if len(pixels) > max_pixels:
        pixels = pixels[torch.randperm(len(pixels), generator=generator)[:max_pixels]]
    distinct = torch.unique(pixels, dim=0)
    if len(distinct) <= num_colors:  # fewer colours than asked: the palette is the colours themselves
        centers = torch.cat([distinct, distinct[:1].expand(num_colors - len(distinct), 3)])
        return ((centers + 1) / 2 * 255).round().clamp(0, 255).to(torch.uint8)
    centers = pixels[torch.randint(len(pixels), (1,), generator=generator)]
    nearest = ((pixels - centers[0]) ** 2).sum(1)
    for _ in range(1, num_colors):
        chosen = torch.multinomial(nearest + 1e-12, 1, generator=generator)
        centers = torch.cat([centers, pixels[chosen]])
        nearest = torch.minimum(nearest, ((pixels - pixels[chosen]) ** 2).sum(1))
    for _ in range(iterations):
        distances = torch.cdist(pixels, centers)
        assignment = distances.argmin(1)
        sums = torch.zeros_like(centers).index_add_(0, assignment, pixels)
        counts = torch.bincount(assignment, minlength=num_colors)
        empty = counts == 0
        centers = torch.where(empty[:, None], centers, sums / counts.clamp(min=1)[:, None])
        if empty.any():
            worst = distances.gather(1, assignment[:, None])[:, 0].topk(int(empty.sum())).indices
            centers[empty] = pixels[worst]
    return ((centers + 1) / 2 * 255).round().clamp(0, 255).to(torch.uint8)


class PokemonDataModule(ImageDataModule):
    """The seed's Pokémon sprites: ``root/pixel_color.txt`` + ``root/colormap.txt`` (792 images of 20x20 in 167
    colours in the original), unlabelled, split ``val_fraction`` held out (seeded)."""

    def __init__(
        self,
        root: str | Path,
        num_colors: int = 167,
        image_size: int = 20,
        channels: int = 3,
        num_classes: int = 0,
        pixel_file: str = "pixel_color.txt",
        colormap_file: str = "colormap.txt",
        **kwargs,
    ):
        if channels != 3:
            raise ValueError(f"palette images are RGB: data.channels must be 3, got {channels}.")
        super().__init__(channels, image_size, num_classes, **kwargs)
        self.root = Path(root).expanduser()
        self.num_colors = num_colors
        self.pixel_file, self.colormap_file = pixel_file, colormap_file
        self.palette: torch.Tensor | None = None

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"data=pokemon: data.root={self.root} is not a directory. Pass data.root=DIR with {self.pixel_file} "
                f"and {self.colormap_file} in it ({SOURCE_HINT})."
            )
        palette = read_colormap(self.root / self.colormap_file)
        if len(palette) != self.num_colors:
            raise PaletteFormatError(
                f"{self.root / self.colormap_file} has {len(palette)} colours but data.num_colors={self.num_colors}; "
                f"set data.num_colors={len(palette)}."
            )
        indices = read_pixel_colors(self.root / self.pixel_file, len(palette), self.image_size)
        self.palette = palette
        images = indices_to_images(indices, palette)
        return self.random_split(TensorDataset(images, torch.full((len(images),), -1, dtype=torch.long)))


class PaletteQuantizedDataModule(ImageDataModule):
    """Any RGB image datamodule (``base``) with every pixel replaced by the nearest colour of a k-means palette
    fitted on its training images (labels kept). Images are materialised in memory once at setup."""

    def __init__(
        self,
        base: ImageDataModule,
        num_colors: int = 167,
        iterations: int = 25,
        max_pixels: int = 200_000,
        seed: int = 0,
        channels: int = 3,
        image_size: int | None = None,
        num_classes: int | None = None,
        batch_size: int | None = None,
    ):
        if base.channels != 3 or channels != 3:
            raise ValueError(f"a colour palette needs RGB data: set data.base.channels=3 (got {base.channels}).")
        if image_size is not None and image_size != base.image_size:
            raise ValueError(f"data.image_size={image_size} must equal data.base.image_size={base.image_size}.")
        super().__init__(3, base.image_size, base.num_classes if num_classes is None else num_classes,
                         batch_size=batch_size or base.batch_size)
        self.base = base
        self.num_colors, self.iterations, self.max_pixels, self.seed = num_colors, iterations, max_pixels, seed
        self.palette: torch.Tensor | None = None

    def prepare_data(self) -> None:
        self.base.prepare_data()  # e.g. a torchvision download

    @staticmethod
    def _materialise(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = zip(*(dataset[i] for i in range(len(dataset))))
        return torch.stack(images), torch.as_tensor(labels, dtype=torch.long)

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        self.base.setup("fit")
        train_images, train_labels = self._materialise(self.base.train_set)
        val_images, val_labels = self._materialise(self.base.val_set)
        pixels = train_images.permute(0, 2, 3, 1).reshape(-1, 3)
        self.palette = kmeans_palette(pixels, self.num_colors, self.iterations, self.max_pixels, self.seed)

        colors = palette_to_colors(self.palette)

        def quantise(images: torch.Tensor) -> torch.Tensor:  # nearest_color_indices bounds its own memory
            return colors_to_images(nearest_color_indices(images, colors), colors)

        return TensorDataset(quantise(train_images), train_labels), TensorDataset(quantise(val_images), val_labels)
