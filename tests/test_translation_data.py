"""Translation data: fixtures written here in the official on-disk layouts (pix2pix AB files, CycleGAN trainA/trainB,
one folder per domain, CelebA's list_attr_celeba.txt) read through the composed Hydra configs, and the embedded
MNIST demos checked against their constructions."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from PIL import Image

from conftest import compose_config
from genlab.data.batch import Batch
from genlab.data.translation import MissingLayoutError, TrainingView
from genlab.data.translation.mnist import (
    DOMAINS,
    MARKER,
    class_colours,
    digits_at,
    ensure_built,
    morphological_gradient,
    read_manifest,
)

TRANSLATION_DATA = ["paired", "unpaired", "domains_folder", "celeba_domains", "mnist_edges2digits", "mnist_colorize", "mnist_thin2thick", "mnist_domains"]


def datamodule(tmp_path: Path, data: str, *overrides: str, root: Path | None = None, setup: bool = True):
    root_override = [f"data.root={root}"] if root is not None else []
    dm = instantiate(compose_config(tmp_path, [f"data={data}", *root_override, "data.num_workers=0", *overrides]).data)
    if setup:
        dm.setup("fit")
    return dm


def init_error(tmp_path: Path, data: str, *overrides: str, root: Path | None = None) -> Exception:
    """The error a datamodule raises when it is built (Hydra wraps it in an InstantiationException)."""
    with pytest.raises(InstantiationException) as err:
        datamodule(tmp_path, data, *overrides, root=root, setup=False)
    return err.value.__cause__


def normalized(uint8: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> float (N, 1, H, W) in [-1, 1], the readers' arithmetic."""
    return torch.from_numpy(np.array(uint8)).float().unsqueeze(1).div(255).sub(0.5).div(0.5)


def grey(value: int, size: tuple[int, int] = (20, 20)) -> Image.Image:
    return Image.fromarray(np.full(size[::-1], value, np.uint8))


def save(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def pattern(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth RGB pattern with no symmetry, so any crop offset or flip shows."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    channels = [np.sin(x / (5 + 3 * rng.random()) + rng.random() * 6) * np.cos(y / (7 + 3 * rng.random())) + x / width for _ in range(3)]
    rgb = np.stack(channels, -1)
    return ((rgb - rgb.min()) / (rgb.max() - rgb.min()) * 255).round().astype(np.uint8)


def write_pair(path: Path, a: np.ndarray, b: np.ndarray) -> Path:
    return save(Image.fromarray(np.concatenate([a, b], axis=1)), path)  # datasets/combine_A_and_B.py


# -- configs ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data", TRANSLATION_DATA)
def test_every_translation_config_composes_and_exposes_the_image_data_keys(tmp_path: Path, data: str):
    cfg = compose_config(tmp_path, [f"data={data}"] + ([f"data.root={tmp_path}"] if data in ("paired", "unpaired", "domains_folder") else []))
    dm = instantiate(cfg.data)
    assert (dm.channels, dm.image_size, dm.num_classes) == (cfg.data.channels, cfg.data.image_size, cfg.data.num_classes)
    assert dm.pairing == {"paired": "paired", "mnist_edges2digits": "paired", "mnist_colorize": "paired"}.get(
        data, "domains" if "domain" in data else "unpaired"
    )
    if dm.pairing == "domains":
        assert dm.num_classes > 0
    else:
        assert dm.num_classes == 0 and dm.source_channels == cfg.data.source_channels


def test_official_defaults_in_the_real_data_configs(tmp_path: Path):
    for data, batch, size in [("paired", 1, 256), ("unpaired", 1, 256), ("celeba_domains", 16, 128)]:
        cfg = compose_config(tmp_path, [f"data={data}", f"data.root={tmp_path}"])
        assert (cfg.data.batch_size, cfg.data.image_size) == (batch, size)
    assert instantiate(compose_config(tmp_path, ["data=paired", f"data.root={tmp_path}"]).data).transform.load_size == 286
    assert instantiate(compose_config(tmp_path, ["data=paired", f"data.root={tmp_path}", "data.image_size=32"]).data).transform.load_size == 36


# -- paired (pix2pix) ---------------------------------------------------------------------------------------------
def test_paired_halves_get_the_same_random_crop_and_flip(tmp_path: Path):
    root = tmp_path / "facades"
    a = pattern(40, 40)
    write_pair(root / "train" / "1.png", a, a)  # identical halves: equal outputs only under one shared draw
    write_pair(root / "val" / "1.png", a, a)
    dm = datamodule(tmp_path, "paired", "data.image_size=32", "data.load_size=40", root=root)
    torch.manual_seed(0)
    draws = [dm.train_set.item(0, augment=True) for _ in range(24)]
    for target, label, source in draws:
        assert label == -1 and target.shape == source.shape == (3, 32, 32)
        assert torch.equal(target, source)
    # and the draws really are random: several crops, both flips
    assert len({tuple(t[0, 0, :4].tolist()) for t, _, _ in draws}) > 6
    unflipped = dm.train_set.transform.apply(Image.fromarray(a), "RGB", dm.train_set.transform.draw(False))
    assert unflipped.shape == (3, 32, 32)
    crops = [dm.train_set.transform.draw(True) for _ in range(200)]
    assert {c.flip for c in crops} == {True, False} and max(c.left for c in crops) == 8 and min(c.top for c in crops) == 0


def test_paired_crop_is_the_official_resize_then_crop(tmp_path: Path):
    root = tmp_path / "maps"
    a, b = pattern(36, 36, seed=1), pattern(36, 36, seed=2)
    write_pair(root / "train" / "x.png", a, b)
    write_pair(root / "val" / "x.png", a, b)
    dm = datamodule(tmp_path, "paired", "data.image_size=32", "data.load_size=36", root=root)
    torch.manual_seed(3)
    draw = dm.transform.draw(True)
    torch.manual_seed(3)
    target, _, source = dm.train_set.item(0, augment=True)
    expect = lambda im: np.array(im)[draw.top : draw.top + 32, draw.left : draw.left + 32]  # noqa: E731  load 36 = file size: no resize
    flip = (lambda x: x[:, ::-1]) if draw.flip else (lambda x: x)
    for got, half in [(source, a), (target, b)]:
        want = torch.from_numpy(flip(expect(half)).copy()).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)
        assert torch.allclose(got, want)


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_paired_direction_picks_which_half_is_the_source(tmp_path: Path, direction: str):
    root = tmp_path / "edges2shoes"
    a, b = np.full((24, 30, 3), (200, 30, 30), np.uint8), np.full((24, 30, 3), (30, 30, 200), np.uint8)
    for split in ("train", "val"):
        write_pair(root / split / "p.jpg", a, b)
    dm = datamodule(tmp_path, "paired", "data.image_size=16", f"data.direction={direction}", "data.batch_size=1", root=root)
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, Batch) and batch.labels is None
    red, blue = torch.tensor([200, 30, 30]) / 127.5 - 1, torch.tensor([30, 30, 200]) / 127.5 - 1
    source_colour, target_colour = (red, blue) if direction == "AtoB" else (blue, red)
    assert torch.allclose(batch.source[0].mean((1, 2)), source_colour, atol=0.05)
    assert torch.allclose(batch.images[0].mean((1, 2)), target_colour, atol=0.05)


def test_paired_reads_odd_sized_jpegs_and_converts_each_half_to_its_channels(tmp_path: Path):
    root = tmp_path / "night2day"
    write_pair(root / "train" / "odd_height.jpg", np.full((37, 25, 3), 60, np.uint8), np.full((37, 25, 3), 220, np.uint8))
    save(Image.fromarray(np.full((20, 40), 90, np.uint8)), root / "train" / "grey.png")  # L
    save(Image.fromarray(np.full((20, 40, 4), 150, np.uint8), "RGBA"), root / "train" / "rgba.png")
    save(Image.fromarray(np.full((20, 40), 3, np.uint8)).convert("P"), root / "train" / "palette.png")
    save(grey(0, (16, 8)), root / "val" / "1.png")
    (root / "train" / "README.txt").write_text("not an image")
    (root / "train" / ".DS_Store").write_bytes(b"\0\1")
    (root / "train" / "._odd_height.jpg").write_bytes(b"mac resource fork")
    dm = datamodule(tmp_path, "paired", "data.image_size=16", "data.channels=3", "data.source_channels=1", root=root)
    assert [p.name for p in dm.train_set.files] == ["grey.png", "odd_height.jpg", "palette.png", "rgba.png"]
    for i in range(4):
        target, _, source = dm.train_set[i]
        assert target.shape == (3, 16, 16) and source.shape == (1, 16, 16)
    target, _, source = dm.train_set[1]
    assert torch.allclose(source.mean(), torch.tensor(60 / 127.5 - 1), atol=0.03)
    assert torch.allclose(target.mean(), torch.tensor(220 / 127.5 - 1), atol=0.03)


def test_paired_refuses_an_odd_width_and_a_corrupt_file_naming_them(tmp_path: Path):
    root = tmp_path / "pairs"
    save(Image.fromarray(np.zeros((16, 33, 3), np.uint8)), root / "train" / "odd.png")
    (root / "train" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    save(grey(0, (32, 16)), root / "val" / "ok.png")
    dm = datamodule(tmp_path, "paired", "data.image_size=16", root=root)
    names = [p.name for p in dm.train_set.files]
    with pytest.raises(ValueError, match=r"odd\.png is 33x16, an odd width.*combine_A_and_B"):
        dm.train_set[names.index("odd.png")]
    with pytest.raises(OSError, match=r"broken\.jpg.*re-encode"):
        dm.train_set[names.index("broken.jpg")]


def test_paired_without_a_held_out_split_warns_and_draws_conditions_from_training(tmp_path: Path):
    root = tmp_path / "pairs"
    write_pair(root / "train" / "1.png", np.full((8, 8, 3), 10, np.uint8), np.full((8, 8, 3), 250, np.uint8))
    with pytest.warns(UserWarning, match="no val/ or test/"):
        dm = datamodule(tmp_path, "paired", "data.image_size=8", root=root)
    assert len(dm.val_set) == 0
    sources = dm.conditions(3, "source", seed=0)
    assert sources.shape == (3, 3, 8, 8) and torch.allclose(sources, torch.full_like(sources, 10 / 127.5 - 1), atol=0.01)


def test_paired_uses_test_when_there_is_no_val(tmp_path: Path):
    root = tmp_path / "pairs"
    write_pair(root / "train" / "1.png", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))
    write_pair(root / "test" / "1.png", np.full((8, 8, 3), 99, np.uint8), np.zeros((8, 8, 3), np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dm = datamodule(tmp_path, "paired", "data.image_size=8", root=root)
    assert len(dm.val_set) == 1 and torch.allclose(dm.val_set[0][2], torch.full((3, 8, 8), 99 / 127.5 - 1), atol=0.01)


def test_load_size_below_image_size_is_refused_before_any_crop(tmp_path: Path):
    error = init_error(tmp_path, "paired", "data.image_size=32", "data.load_size=30", root=tmp_path)
    assert isinstance(error, ValueError) and "load_size=30 is smaller than data.image_size=32" in str(error) and "286" in str(error)


# -- unpaired (CycleGAN) ------------------------------------------------------------------------------------------
def write_unpaired(root: Path, n_a: int = 3, n_b: int = 5, test: tuple[int, int] | None = (2, 4)) -> None:
    """A images have grey level 10 * (k + 1), B images 100 + 20 * k: each item tells which files it read."""
    for k in range(n_a):
        save(grey(10 * (k + 1)), root / "trainA" / f"a{k}.jpg")
    for k in range(n_b):
        save(grey(100 + 20 * k), root / "trainB" / f"b{k}.png")
    if test:
        for k in range(test[0]):
            save(grey(10 * (k + 1)), root / "testA" / f"a{k}.png")
        for k in range(test[1]):
            save(grey(100 + 20 * k), root / "testB" / f"b{k}.png")


def ids(item) -> tuple[int, int]:
    """(A index, B index) of an unpaired item, read back from the grey levels."""
    target, label, source = item
    assert label == -1
    level = lambda t: float(t.mean()) * 127.5 + 127.5  # noqa: E731
    return round(level(source) / 10) - 1, round((level(target) - 100) / 20)


def test_unpaired_counts_and_random_versus_serial_pairing(tmp_path: Path):
    root = tmp_path / "horse2zebra"
    write_unpaired(root)
    dm = datamodule(tmp_path, "unpaired", "data.image_size=16", "data.channels=1", "data.source_channels=1", root=root)
    assert len(dm.train_set) == 5  # max(|A|, |B|), as the official UnalignedDataset
    assert [ids(dm.train_set[i]) for i in range(5)] == [(0, 0), (1, 1), (2, 2), (0, 3), (1, 4)]  # deterministic view
    torch.manual_seed(0)
    drawn = [ids(dm.train_set.item(0, augment=True)) for _ in range(60)]
    assert {a for a, _ in drawn} == {0} and {b for _, b in drawn} == set(range(5))  # A fixed, B random per draw
    serial = datamodule(tmp_path, "unpaired", "data.image_size=16", "data.channels=1", "data.source_channels=1", "data.serial=true", root=root)
    assert {ids(serial.train_set.item(3, augment=True)) for _ in range(20)} == {(0, 3)}
    batch = next(iter(serial.train_dataloader()))
    assert isinstance(batch, Batch) and batch.labels is None and batch.source.shape == batch.images.shape == (1, 1, 16, 16)


def test_unpaired_conditions_are_seeded_held_out_a_images(tmp_path: Path):
    root = tmp_path / "monet2photo"
    write_unpaired(root, test=(2, 4))
    dm = datamodule(tmp_path, "unpaired", "data.image_size=16", "data.channels=1", "data.source_channels=1", root=root)
    assert len(dm.val_set) == 2  # every held-out A once
    sources = dm.conditions(8, "source", seed=1)
    assert sources.shape == (8, 1, 16, 16)
    assert torch.equal(sources, dm.conditions(8, "source", seed=1))
    levels = sorted({round(float(s.mean()) * 127.5 + 127.5) for s in sources})
    assert set(levels) <= {10, 20} and len(levels) == 2  # testA's two images, nothing from B
    assert not torch.equal(dm.conditions(8, "source", seed=2), sources)


def test_unpaired_direction_swaps_the_folders_and_missing_test_folders_are_optional(tmp_path: Path):
    root = tmp_path / "apple2orange"
    write_unpaired(root, test=None)
    save(grey(10), root / "testA" / "a0.png")  # testA without testB: held-out A meets trainB images
    dm = datamodule(tmp_path, "unpaired", "data.image_size=16", "data.channels=1", "data.source_channels=1", root=root)
    assert len(dm.val_set) == 1 and ids(dm.val_set[0]) == (0, 0)
    swapped = datamodule(tmp_path, "unpaired", "data.image_size=16", "data.channels=1", "data.source_channels=1", "data.direction=BtoA", root=root)
    target, _, source = swapped.train_set[4]
    assert round(float(source.mean()) * 127.5 + 127.5) == 180 and round(float(target.mean()) * 127.5 + 127.5) == 20
    (root / "testA" / "a0.png").unlink()
    (root / "testA").rmdir()
    with pytest.warns(UserWarning, match="no testA/"):
        bare = datamodule(tmp_path, "unpaired", "data.image_size=16", "data.channels=1", "data.source_channels=1", root=root)
    assert len(bare.val_set) == 0 and bare.conditions(2, "source").shape == (2, 1, 16, 16)


def test_unpaired_converts_mixed_modes_and_ignores_non_images(tmp_path: Path):
    root = tmp_path / "mixed"
    save(Image.fromarray(np.full((30, 17), 40, np.uint8)), root / "trainA" / "grey.png")
    save(Image.fromarray(np.full((17, 30, 4), 40, np.uint8), "RGBA"), root / "trainA" / "rgba.png")
    save(Image.fromarray(np.full((17, 17, 3), 40, np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE), root / "trainA" / "nested" / "palette.png")
    save(Image.fromarray(np.full((50, 40), 40 * 257, np.uint16)), root / "trainA" / "sixteen_bit.tif")
    (root / "trainA" / "labels.csv").write_text("a,b\n")
    save(grey(200), root / "trainB" / "b.png")
    dm = datamodule(tmp_path, "unpaired", "data.image_size=16", root=root)  # 3 channels
    assert sorted(p.name for p in dm.train_set.files_a) == ["grey.png", "palette.png", "rgba.png", "sixteen_bit.tif"]
    for i in range(4):
        target, _, source = dm.train_set[i]
        assert source.shape == target.shape == (3, 16, 16)
    for i in range(3):  # the 8-bit files: grey 40 in every channel after conversion
        assert torch.allclose(dm.train_set[i][2], torch.full((3, 16, 16), 40 / 127.5 - 1), atol=0.02), dm.train_set.files_a[i]


# -- layouts that are not there ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data,make,problem,names",
    [
        ("paired", None, "root folder does not exist", "ROOT/train/*.jpg"),
        ("paired", ["trainA", "trainB"], "no folder train/", "use data=unpaired"),
        ("paired", ["train"], "holds no images", "ROOT/val/*.jpg"),
        ("unpaired", ["trainA"], "no folder trainB/", "ROOT/trainB/*.jpg"),
        ("unpaired", ["train"], "no folder trainA/", "use data=paired"),
        ("domains_folder", [], "has no domain folders", "ROOT/<domain>/*.jpg"),
        ("celeba_domains", ["celeba/img_align_celeba"], "no list_attr_celeba.txt", "list_attr_celeba.txt"),
    ],
)
def test_a_missing_layout_is_one_error_naming_the_layout_and_the_fix(tmp_path: Path, data, make, problem, names):
    root = tmp_path / "dataset"
    if make is not None:
        root.mkdir()
        for folder in make:
            (root / folder).mkdir(parents=True)
        if "trainA" in make:
            save(grey(1), root / "trainA" / "x.png")
            if "trainB" in make:
                save(grey(1), root / "trainB" / "x.png")
        if make and "celeba" in make[0]:
            save(grey(1), root / make[0] / "000001.jpg")
    with pytest.raises(MissingLayoutError) as err:
        datamodule(tmp_path, data, root=root)
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert problem in message and names in message and f"data.root={root}" in message and "Fix:" in message


# -- multi-domain -------------------------------------------------------------------------------------------------
def test_domain_folders_label_each_image_with_its_sorted_domain(tmp_path: Path):
    root = tmp_path / "faces"
    for value, domain, count in [(50, "happy", 3), (150, "angry", 2), (250, "sad", 5)]:
        for k in range(count):
            save(grey(value, (24, 30)), root / domain / f"{k}.jpg")
    (root / "README.md").write_text("domains")
    dm = datamodule(tmp_path, "domains_folder", "data.num_classes=3", "data.image_size=16", "data.val_fraction=0.2", root=root)
    assert dm.domain_names == ["angry", "happy", "sad"] and dm.labels_are_attributes is False
    assert len(dm.train_set) + len(dm.val_set) == 10 and len(dm.val_set) == 2
    for dataset in (dm.train_set, dm.val_set):
        for i in range(len(dataset)):
            image, label = dataset[i]
            assert image.shape == (3, 16, 16)
            assert abs(float(image.mean()) * 127.5 + 127.5 - {0: 150, 1: 50, 2: 250}[label]) < 3
    batch = next(iter(dm.train_dataloader()))
    assert batch.source is None and batch.labels.dtype == torch.int64 and batch.labels.shape == (len(batch),)
    assert dm.conditions(4, "labels", seed=0).shape == (4,)


def test_domain_folders_in_stargans_train_test_layout_and_its_errors(tmp_path: Path):
    root = tmp_path / "RaFD"
    for split, count in [("train", 3), ("test", 1)]:
        for domain in ("angry", "happy"):
            for k in range(count):
                save(grey(100, (40, 60)), root / split / domain / f"{k}.png")
    dm = datamodule(tmp_path, "domains_folder", "data.num_classes=2", "data.image_size=16", root=root)
    assert (len(dm.train_set), len(dm.val_set)) == (6, 2) and sorted(dm.val_set.targets) == [0, 1]
    with pytest.raises(ValueError, match=r"found 2 domain folders in .*RaFD/train \(angry, happy\) but data.num_classes=8.*set data.num_classes=2"):
        datamodule(tmp_path, "domains_folder", "data.num_classes=8", root=root)
    (root / "train" / "sad").mkdir()
    with pytest.raises(MissingLayoutError, match=r"domain folder .*sad holds no images"):
        datamodule(tmp_path, "domains_folder", "data.num_classes=3", root=root)
    (root / "train" / "sad").rmdir()
    save(grey(1), root / "test" / "surprised" / "0.png")
    with pytest.raises(MissingLayoutError, match=r"test/ has domain folders that train/ lacks \(surprised\)"):
        datamodule(tmp_path, "domains_folder", "data.num_classes=2", root=root)
    save(grey(1), root / "train" / "loose.png")
    with pytest.raises(MissingLayoutError, match=r"outside any domain folder \(loose.png\)"):
        datamodule(tmp_path, "domains_folder", "data.num_classes=2", root=root)


ATTRIBUTE_NAMES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair "
    "Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male "
    "Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks "
    "Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young"
).split()


def write_celeba_attributes(root: Path, n: int = 10, image_dir: str = "img_align_celeba") -> dict[str, list[int]]:
    """CelebA's real formats: 178x218 JPEGs and list_attr_celeba.txt (count, 40 names, then rows of 1 / -1 padded
    to two characters, as in the released file)."""
    base = root / "celeba"
    rng = np.random.default_rng(0)
    table = {}
    for i in range(1, n + 1):
        name = f"{i:06d}.jpg"
        save(Image.fromarray(np.full((218, 178, 3), 20 * i, np.uint8)), base / image_dir / name)
        table[name] = rng.choice([-1, 1], size=40).tolist()
    lines = [str(n), " ".join(ATTRIBUTE_NAMES) + " "] + [name + " " + " ".join(f"{v:2d}" for v in values) for name, values in table.items()]
    (base / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (base / "list_eval_partition.txt").write_text("".join(f"{name} {0 if i < 7 else 1 if i < 9 else 2}\n" for i, name in enumerate(table)))
    return table


@pytest.mark.parametrize("image_dir", ["img_align_celeba", "images"])
def test_celeba_domains_labels_are_the_chosen_attributes_as_float_vectors(tmp_path: Path, image_dir: str):
    table = write_celeba_attributes(tmp_path / "data", image_dir=image_dir)
    dm = datamodule(tmp_path, "celeba_domains", "data.held_out_count=3", "data.image_size=32", root=tmp_path / "data")
    assert (len(dm.train_set), len(dm.val_set)) == (7, 3) and dm.labels_are_attributes
    assert dm.domain_names == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    columns = [ATTRIBUTE_NAMES.index(a) for a in dm.domain_names]
    for dataset in (dm.train_set, dm.val_set):
        for i in range(len(dataset)):
            image, label = dataset[i]
            name = dataset.files[i].name
            assert label.dtype == torch.float32 and label.tolist() == [float(table[name][c] == 1) for c in columns]
            assert image.shape == (3, 32, 32) and abs(float(image.mean()) * 127.5 + 127.5 - 20 * int(name[:6])) < 3
    batch = next(iter(dm.train_dataloader()))
    assert batch.labels.shape == (len(batch), 5) and batch.labels.dtype == torch.float32 and batch.source is None


def test_celeba_domains_split_follows_stargan_or_the_official_partition(tmp_path: Path):
    import random

    table = write_celeba_attributes(tmp_path / "data")
    lines = [f"{name} x" for name in table]
    random.seed(1234)  # StarGAN's CelebA.preprocess
    random.shuffle(lines)
    stargan_test = {line.split()[0] for i, line in enumerate(lines) if (i + 1) < 4}
    dm = datamodule(tmp_path, "celeba_domains", "data.held_out_count=3", root=tmp_path / "data" / "celeba")
    assert {p.name for p in dm.val_set.files} == stargan_test
    official = datamodule(tmp_path, "celeba_domains", "data.split=official", root=tmp_path / "data")
    assert [p.name for p in official.val_set.files] == ["000008.jpg", "000009.jpg"] and len(official.train_set) == 7
    with pytest.raises(ValueError, match=r"no attribute \['Red_Hair'\]; choose from: 5_o_Clock_Shadow"):
        datamodule(tmp_path, "celeba_domains", "data.attributes=[Red_Hair]", "data.num_classes=1", root=tmp_path / "data")
    error = init_error(tmp_path, "celeba_domains", "data.attributes=[Male,Young]", root=tmp_path / "data")
    assert isinstance(error, ValueError) and "found 2 attributes in data.attributes (Male, Young)" in str(error)
    assert "set data.num_classes=2" in str(error)
    (tmp_path / "data" / "celeba" / "img_align_celeba" / "000004.jpg").unlink()
    with pytest.raises(MissingLayoutError, match=r"lists 1 images that .* lacks \(first: 000004.jpg\)"):
        datamodule(tmp_path, "celeba_domains", root=tmp_path / "data")


# -- embedded demos -----------------------------------------------------------------------------------------------
def test_mnist_edges2digits_pairs_each_digit_with_its_morphological_gradient(tmp_path: Path):
    dm = datamodule(tmp_path, "mnist_edges2digits")
    assert (len(dm.train_set), len(dm.val_set)) == (4000, 500)
    assert {p.parent.name for p in dm.train_set.files} == {"train"} and (dm.root / "test").is_dir()
    batch = next(iter(dm.train_dataloader()))
    assert batch.images.shape == batch.source.shape == (16, 1, 32, 32) and batch.labels is None
    assert batch.images.min() == -1 and batch.images.max() == 1 and batch.source.min() >= -1
    targets, sources = torch.stack([dm.val_set[i][0] for i in range(50)]), torch.stack([dm.val_set[i][2] for i in range(50)])
    edges = morphological_gradient((targets + 1) / 2) * 2 - 1
    assert torch.allclose(sources, edges, atol=1e-6)  # A = dilation - erosion of B, exactly (uint8 files)
    assert (sources > 0).float().mean() > (targets > 0).float().mean()  # the edge band is wider than the strokes


def test_mnist_colorize_paints_each_class_in_its_colour(tmp_path: Path):
    dm = datamodule(tmp_path, "mnist_colorize")
    labels = dm.digit_labels(dm.val_set, range(40))
    colours = torch.from_numpy(class_colours()).float()
    assert len({tuple(c) for c in class_colours().tolist()}) == 10
    for i in range(40):
        target, _, source = dm.val_set[i]
        assert source.shape == (1, 32, 32) and target.shape == (3, 32, 32)
        want = (source + 1) / 2 * colours[labels[i]].view(3, 1, 1) / 255 * 2 - 1
        assert (target - want).abs().max() <= 1.01 / 127.5  # one grey level of rounding


def test_mnist_thin2thick_b_is_other_digits_dilated_and_true_target_is_exact(tmp_path: Path):
    dm = datamodule(tmp_path, "mnist_thin2thick")
    manifest = read_manifest(dm.root)
    split_of = lambda s: {v[0] for k, v in manifest.items() if k.startswith(s + "/")}  # noqa: E731
    train_a, train_b, test_a, test_b = (split_of(s) for s in ("trainA", "trainB", "testA", "testB"))
    assert (len(train_a), len(train_b), len(test_a), len(test_b)) == (2000, 2000, 500, 500)
    assert len(train_a | train_b | test_a | test_b) == 5000  # disjoint: B holds *other* digits
    digits, labels = digits_at(32)
    assert np.bincount(labels[sorted(train_b)], minlength=10).tolist() == [200] * 10
    # every B image is exactly the true target of its own (unseen) thin digit
    files_b = dm.train_set.files_b
    index = [manifest[p.relative_to(dm.root).as_posix()][0] for p in files_b[:300]]
    b_images = torch.stack([dm.train_set[i][0] for i in range(300)])
    assert torch.equal(dm.true_target(normalized(digits[index])), b_images)
    # and the A images are the plain digits, so true_target(A) is a thick digit like B's, not the identity
    a_index = [manifest[dm.train_set.source_file(i).relative_to(dm.root).as_posix()][0] for i in range(300)]
    sources = torch.stack([dm.train_set[i][2] for i in range(300)])
    assert torch.equal(sources, normalized(digits[a_index]))
    assert not torch.equal(dm.true_target(sources), sources)
    ink = lambda x: (x > 0).float().mean().item()  # noqa: E731
    assert ink(dm.true_target(sources)) == pytest.approx(ink(b_images), rel=0.1) and ink(b_images) > 1.5 * ink(sources)
    with pytest.raises(ValueError, match="thick -> thin is no function"):
        datamodule(tmp_path, "mnist_thin2thick", "data.direction=BtoA", setup=False).true_target(sources)


def test_mnist_thin2thick_batches_conditions_and_source_labels(tmp_path: Path):
    dm = datamodule(tmp_path, "mnist_thin2thick")
    batch = next(iter(dm.train_dataloader()))
    assert batch.images.shape == batch.source.shape == (16, 1, 32, 32) and batch.labels is None
    assert batch.images.min() >= -1 and batch.images.max() <= 1
    sources = dm.conditions(12, "source", seed=5)
    labels = dm.source_labels(12, seed=5)
    digits, all_labels = digits_at(32)
    manifest = read_manifest(dm.root)
    test_a = sorted((v for k, v in manifest.items() if k.startswith("testA/")), key=lambda v: v[0])
    lookup = {tuple(normalized(digits[i : i + 1]).flatten()[::7].tolist()): label for i, label in test_a}
    assert [lookup[tuple(s.flatten()[::7].tolist())] for s in sources] == labels.tolist()  # held-out A, right classes
    assert torch.equal(sources, dm.conditions(12, "source", seed=5))


def test_mnist_domains_are_four_styles_of_disjoint_digits(tmp_path: Path):
    dm = datamodule(tmp_path, "mnist_domains")
    assert dm.domain_names == sorted(DOMAINS) and dm.num_classes == 4
    assert (len(dm.train_set), len(dm.val_set)) == (4500, 500)
    counts = torch.bincount(torch.tensor(dm.train_set.targets), minlength=4).tolist()
    assert max(counts) - min(counts) <= 10 and sum(counts) == 4500
    manifest = read_manifest(dm.root)
    digits, _ = digits_at(32)
    for i in range(0, 4500, 450):
        image, label = dm.train_set[i]
        plain_index = manifest[dm.train_set.files[i].relative_to(dm.root).as_posix()][0]
        want = dm.render(normalized(digits[plain_index : plain_index + 1]), dm.domain_names[label])[0]
        assert image.shape == (3, 32, 32)
        assert (image - want).abs().max() <= 1.01 / 127.5, dm.domain_names[label]
    batch = next(iter(dm.train_dataloader()))
    assert batch.labels.dtype == torch.int64 and batch.source is None and batch.images.shape == (16, 3, 32, 32)
    inverted = dm.render(-torch.ones(1, 1, 4, 4), "inverted")
    assert torch.equal(inverted, torch.ones(1, 3, 4, 4))


def test_demo_builds_once_and_refuses_a_foreign_folder(tmp_path: Path):
    dm = datamodule(tmp_path, "mnist_thin2thick", setup=False)
    dm.prepare_data()
    marker = dm.root / MARKER
    stamp = marker.stat().st_mtime_ns
    assert ensure_built("mnist_thin2thick", dm.root, 32) == dm.root and marker.stat().st_mtime_ns == stamp
    assert not [p for p in dm.root.parent.iterdir() if ".building-" in p.name]  # no temporary left behind
    foreign = tmp_path / "mine"
    save(grey(0), foreign / "photo.png")
    with pytest.raises(FileExistsError, match=r"not a complete genlab-built copy.*Delete it"):
        datamodule(tmp_path, "mnist_thin2thick", root=foreign)


def test_training_view_draws_from_the_seeded_global_rng(tmp_path: Path):
    dm = datamodule(tmp_path, "mnist_thin2thick")
    view = TrainingView(dm.train_set)

    def draws(seed):
        torch.manual_seed(seed)
        return torch.stack([view[0][0] for _ in range(8)])

    assert torch.equal(draws(1), draws(1)) and not torch.equal(draws(1), draws(2))
    assert torch.equal(dm.train_set[0][0], dm.train_set[0][0])  # the deterministic view never draws
