"""Palette data: the Pokémon-creation format written here as fixtures, its errors, the k-means quantiser, and a
PixelRNN trained end to end on it with sample and completion grids."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from conftest import FAST, compose_config
import genlab.data.palette as palette_module
from genlab.coding import PaletteCoding
from genlab.data.base import ImageDataModule
from genlab.data.palette import (
    PaletteFormatError,
    PaletteQuantizedDataModule,
    images_to_indices,
    indices_to_images,
    kmeans_palette,
    nearest_color_indices,
    palette_to_colors,
    read_colormap,
    read_pixel_colors,
    write_palette_files,
)
from genlab.run import train


def random_palette(k: int, seed: int = 0) -> torch.Tensor:
    colors = torch.randperm(256**3, generator=torch.Generator().manual_seed(seed))[:k]  # distinct colours
    palette = torch.stack([colors // 65536, colors // 256 % 256, colors % 256], 1).to(torch.uint8)
    palette[0] = 255  # index 0 is white, as in the seed's colormap.txt
    return palette


def write_pokemon(root: Path, n: int = 30, k: int = 12, size: int = 20, separator: str = ",", seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randint(k, (n, size, size), generator=generator)
    palette = random_palette(k, seed)
    write_palette_files(indices, palette, root, separator=separator)
    return indices, palette


def pokemon(tmp_path: Path, *overrides: str):
    cfg = compose_config(tmp_path, ["data=pokemon", f"data.root={tmp_path / 'pokemon'}", *overrides])
    dm = instantiate(cfg.data)
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("separator", [",", " ", ", ", "\t"])
def test_round_trip_indices_images_indices_is_exact(tmp_path: Path, separator: str):
    indices, palette = write_pokemon(tmp_path / "pokemon", separator=separator, k=167)
    dm = pokemon(tmp_path, "data.val_fraction=0.2")
    assert torch.equal(dm.palette, palette)
    assert (dm.channels, dm.image_size, dm.num_classes) == (3, 20, 0)
    coding = PaletteCoding(167)
    coding.set_palette(dm.palette)
    for subset in (dm.train_set, dm.val_set):
        images = torch.stack([subset[i][0] for i in range(len(subset))])
        assert images.shape[1:] == (3, 20, 20) and images.min() >= -1 and images.max() <= 1
        assert torch.equal(coding.encode(images)[:, 0], indices[subset.indices])
        assert torch.equal(images_to_indices(images, palette), indices[subset.indices])
        assert torch.equal(coding.decode(coding.encode(images)), images)
    batch = next(iter(dm.train_dataloader()))
    assert batch.labels is None and batch.source is None  # unlabelled data: no -1 labels in the Batch
    assert batch.images.shape == (min(dm.batch_size, len(dm.train_set)), 3, 20, 20)
    assert torch.equal(coding.decode(coding.encode(batch.images)), batch.images)
    assert (len(dm.train_set), len(dm.val_set)) == (24, 6)


def test_colormap_line_one_is_index_zero(tmp_path: Path):
    (tmp_path / "colormap.txt").write_text("255 255 255\n0,0,0\n\n10 20 30\n")
    assert read_colormap(tmp_path / "colormap.txt").tolist() == [[255, 255, 255], [0, 0, 0], [10, 20, 30]]


@pytest.mark.parametrize(
    "line,message",
    [
        (",".join(["1"] * 399), "line 2: expected 400 palette indices (20x20), found 399"),
        (",".join(["1"] * 399 + ["x"]), "line 2: 'x' is not an integer"),
        (",".join(["1"] * 399 + ["12"]), "line 2: palette index 12 is out of range; the colormap has 12 colours"),
        (",".join(["1"] * 399 + ["-1"]), "line 2: palette index -1 is out of range"),
        (",".join(["1"] * 1600), "found 1600 (that is 40x40: set data.image_size=40)"),
    ],
)
def test_malformed_pixel_lines_say_which_line_and_what(tmp_path: Path, line: str, message: str):
    write_pokemon(tmp_path, n=3)
    rows = (tmp_path / "pixel_color.txt").read_text().splitlines()
    rows[1] = line
    (tmp_path / "pixel_color.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(PaletteFormatError) as err:
        read_pixel_colors(tmp_path / "pixel_color.txt", 12, 20)
    assert message in str(err.value) and "pixel_color.txt" in str(err.value)


@pytest.mark.parametrize("line", ["255 255", "255 255 256", "red green blue", "1 2 3 4", "1.5 2 3"])
def test_malformed_colormap_lines_say_which_line(tmp_path: Path, line: str):
    (tmp_path / "colormap.txt").write_text(f"255 255 255\n0 0 0\n{line}\n")
    with pytest.raises(PaletteFormatError, match=r"colormap.txt line 3: expected three integers R G B in 0\.\.255"):
        read_colormap(tmp_path / "colormap.txt")


def test_missing_files_and_palette_size_mismatch_are_explained(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="data.root=.*is not a directory"):
        pokemon(tmp_path)
    (tmp_path / "pokemon").mkdir()
    with pytest.raises(FileNotFoundError, match="colormap.txt not found"):
        pokemon(tmp_path)
    write_pokemon(tmp_path / "pokemon", k=12)
    (tmp_path / "pokemon" / "pixel_color.txt").unlink()
    with pytest.raises(FileNotFoundError, match="pixel_color.txt not found"):
        pokemon(tmp_path, "data.num_colors=12")
    write_pokemon(tmp_path / "pokemon", k=12)
    with pytest.raises(PaletteFormatError, match="has 12 colours but data.num_colors=167; set data.num_colors=12"):
        pokemon(tmp_path)


def test_kmeans_palette_recovers_well_separated_colours():
    generator = torch.Generator().manual_seed(0)
    centers = torch.tensor([[-0.8, -0.8, -0.8], [0.8, -0.6, -0.6], [-0.6, 0.8, -0.6], [-0.6, -0.6, 0.8], [0.9, 0.9, 0.9]])
    pixels = centers[torch.randint(5, (5000,), generator=generator)] + 0.02 * torch.randn(5000, 3, generator=generator)
    palette = kmeans_palette(pixels, 5, seed=0)
    found = palette.float() / 255 * 2 - 1
    nearest = torch.cdist(centers, found).min(1).values
    assert palette.shape == (5, 3) and palette.dtype == torch.uint8 and torch.all(nearest < 0.03)


def test_folder_of_images_becomes_palette_images(tmp_path: Path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "sprites"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    cfg = compose_config(tmp_path, ["data=folder_palette", f"data.base.root={folder}", "data.num_colors=16", "data.iterations=5"])
    dm = instantiate(cfg.data)
    dm.setup("fit")
    assert (dm.channels, dm.image_size, dm.palette.shape) == (3, 20, (16, 3))
    images = torch.stack([dm.train_set[i][0] for i in range(len(dm.train_set))])
    assert images.shape[1:] == (3, 20, 20)
    assert torch.equal(indices_to_images(images_to_indices(images, dm.palette), dm.palette), images)
    assert (len(dm.train_set), len(dm.val_set)) == (11, 1)


def unchunked_nearest(images: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """The mapping as both callers wrote it before it was shared: one (N, H, W, K) distance tensor."""
    return ((images.permute(0, 2, 3, 1)[..., None, :] - colors) ** 2).sum(-1).argmin(-1)


def test_datamodule_and_coding_map_a_palette_image_identically_and_exactly_back(tmp_path: Path):
    """The data yields images through the same mapping the coding decodes with: bit-identical images, the same
    indices for any image (also off-palette ones, near ties included), exact round trips on both sides."""
    indices, palette = write_pokemon(tmp_path / "pokemon", n=20, k=167, seed=3)
    dm = pokemon(tmp_path, "data.val_fraction=0")
    coding = PaletteCoding(167)
    coding.adapt(dm)
    assert torch.equal(coding.colors, palette_to_colors(palette))
    data_images = torch.stack([dm.train_set[i][0] for i in range(len(dm.train_set))])
    order = torch.tensor(dm.train_set.indices)
    coded_images = coding.decode(indices[order][:, None])
    assert torch.equal(data_images, coded_images)
    assert torch.equal(indices_to_images(indices[order], palette), coded_images)
    assert torch.equal(coding.encode(data_images)[:, 0], indices[order])
    assert torch.equal(images_to_indices(data_images, palette), indices[order])
    # off-palette pixels: random colours and midpoints between two palette colours (ties to the lower index)
    generator = torch.Generator().manual_seed(0)
    noise = torch.rand(4, 3, 20, 20, generator=generator) * 2 - 1
    colors = palette_to_colors(palette)
    pairs = torch.randint(167, (2, 4, 20, 20), generator=generator)
    midpoints = ((colors[pairs[0]] + colors[pairs[1]]) / 2).permute(0, 3, 1, 2)
    for images in (noise, midpoints):
        expected = unchunked_nearest(images, colors)
        assert torch.equal(coding.encode(images)[:, 0], expected)
        assert torch.equal(images_to_indices(images, palette), expected)
    # the quantising datamodule quantises with the same mapping: a palette image is a fixed point of it
    class PaletteImages(ImageDataModule):
        def build_datasets(self):
            return dm.train_set, dm.train_set

    quantised = PaletteQuantizedDataModule(PaletteImages(3, 20, 0), num_colors=167)
    quantised.setup("fit")
    assert torch.equal(torch.unique(quantised.palette, dim=0), torch.unique(palette, dim=0))  # k-means: same colours
    assert torch.equal(quantised.train_set.tensors[0], data_images)


@pytest.mark.parametrize("budget", [1, 3 * 167, 3 * 167 * 7 + 5, 2**30])
def test_chunked_nearest_colour_search_gives_the_unchunked_indices(budget: int):
    generator = torch.Generator().manual_seed(1)
    colors = palette_to_colors(random_palette(167, seed=1))
    images = torch.rand(3, 3, 5, 7, generator=generator) * 2 - 1  # 105 pixels: chunks cross image boundaries
    images[0, :, 0, 0] = colors[5]
    found = nearest_color_indices(images, colors, budget=budget)
    assert found.shape == (3, 5, 7) and found.dtype == torch.long and found[0, 0, 0] == 5
    assert torch.equal(found, unchunked_nearest(images, colors))


def largest_allocation(fn) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return max(event.cpu_memory_usage for event in prof.events())


def test_nearest_colour_search_memory_is_bounded_for_the_coding_and_the_datamodule(monkeypatch):
    """Both callers go through the budget: with a small one, no allocation comes near the (N, H, W, K, 3)
    difference tensor a one-pass search would build (here 167 x the image itself)."""
    palette = random_palette(167, seed=2)
    images = torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    one_pass = images.numel() * 167 * 4
    assert largest_allocation(lambda: unchunked_nearest(images, palette_to_colors(palette))) >= one_pass
    monkeypatch.setattr(palette_module, "NEAREST_COLOR_BUDGET", 2**14)
    coding = PaletteCoding(167)
    coding.set_palette(palette)
    bound = max(images.numel() * 8, 2**14 * 4)  # the flattened pixels / the int64 indices, or one chunk
    assert largest_allocation(lambda: coding.encode(images)) <= bound
    assert largest_allocation(lambda: images_to_indices(images, palette)) <= bound


def test_palette_coding_errors_are_unchanged():
    coding = PaletteCoding(4)
    with pytest.raises(RuntimeError, match="the palette is not set yet"):
        coding.encode(torch.zeros(1, 3, 2, 2))
    with pytest.raises(RuntimeError, match="the palette is not set yet"):
        coding.decode(torch.zeros(1, 1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"built for a 4-colour palette but the data has 5 colours; set data.num_colors=5"):
        coding.set_palette(random_palette(5))
    assert not coding.ready
    with pytest.raises(ValueError, match="has no palette"):
        coding.adapt(object())
    coding.set_palette(random_palette(4))
    with pytest.raises(ValueError, match=r"palette coding needs RGB images \(3 channels\), got 1\."):
        coding.encode(torch.zeros(1, 1, 2, 2))


def test_pixelrnn_trains_on_pokemon_and_draws_palette_samples_and_completions(tmp_path: Path):
    """The seed's setting end to end (tiny): model=pixelrnn data=pokemon, samples in palette colours only, the
    completion grid of original | covered 50 % | completed | covered 75 % | completed."""
    write_pokemon(tmp_path / "pokemon", n=40, k=8, size=8)
    cfg = compose_config(
        tmp_path,
        ["model=pixelrnn", "data=pokemon", f"data.root={tmp_path / 'pokemon'}", "data.num_colors=8", "data.image_size=8",
         "data.batch_size=8", "model.net.hidden=32", *FAST, "callbacks.sample_grid.num_samples=4", "logger=none",
         "callbacks.completion_grid.num_images=3", "callbacks.model_checkpoint.every_n_epochs=1"],
    )
    metrics = train(cfg)
    assert math.isfinite(metrics["val/nll_nats"]) and math.isfinite(metrics["train/bits_per_dim"])
    run = tmp_path / "run"
    grid = np.asarray(Image.open(sorted((run / "samples").glob("step_*.png"))[-1]))
    palette = read_colormap(tmp_path / "pokemon" / "colormap.txt").numpy()
    inner = grid[2:10, 2:10].reshape(-1, 3)  # the first sample, inside the padding
    assert all((palette == pixel).all(1).any() for pixel in inner), "samples must be made of palette colours"
    completion = Image.open(run / "completions" / "epoch_000.png")
    assert completion.size == (3 * 10 + 2, 5 * 10 + 2)
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert torch.equal(checkpoint["state_dict"]["coding.colors"], torch.tensor(palette).float() / 255 * 2 - 1)
