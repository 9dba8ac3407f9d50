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
from genlab.coding import PaletteCoding
from genlab.data.palette import (
    PaletteFormatError,
    images_to_indices,
    indices_to_images,
    kmeans_palette,
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
    images, labels = next(iter(dm.train_dataloader()))
    assert labels.dtype == torch.int64 and torch.all(labels == -1)
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
