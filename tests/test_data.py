"""Datamodules read fixtures written here in the datasets' real on-disk formats, through torchvision's readers."""

import pickle
import struct
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from conftest import compose_config
from genlab.data.batch import Batch
from genlab.data.mnist5k import load_mnist5k


def datamodule(tmp_path: Path, data: str, *overrides: str):
    root = [] if data == "mnist5k" else [f"data.root={tmp_path / 'data'}"]
    dm = instantiate(compose_config(tmp_path, [f"data={data}", *root, "data.num_workers=0", *overrides]).data)
    dm.setup("fit")
    return dm


def first_batch(dm):
    return next(iter(dm.train_dataloader()))


def assert_contract(batch: Batch, channels: int, size: int, labelled: bool = True):
    """A Batch of float images in [-1, 1] at the data's size; int64 labels for labelled data, none otherwise."""
    assert isinstance(batch, Batch) and batch.source is None
    images = batch.images
    assert images.dtype == torch.float32 and images.shape[1:] == (channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    if labelled:
        assert batch.labels.dtype == torch.int64 and batch.labels.shape == (len(images),)
        assert 0 <= batch.labels.min() and batch.labels.max() < 10
    else:
        assert batch.labels is None


def write_idx(root: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, len(images), 28, 28) + images.tobytes())
    (root / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, len(labels)) + labels.tobytes())


@pytest.mark.parametrize("data,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_family_reads_idx_files(tmp_path: Path, data: str, folder: str):
    rng = np.random.default_rng(0)
    train_images = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    train_images[0] = 0  # an all-black digit must map to -1 everywhere
    write_idx(tmp_path / "data" / folder / "raw", "train", train_images, np.arange(20, dtype=np.uint8) % 10)
    write_idx(tmp_path / "data" / folder / "raw", "t10k", train_images[:6], np.arange(6, dtype=np.uint8))
    dm = datamodule(tmp_path, data, "data.batch_size=4")
    assert (len(dm.train_set), len(dm.val_set)) == (20, 6)
    image, label = dm.train_set[0]
    assert_contract(dm.batch_of(dm.train_set, [0]), 1, 32)
    assert label == 0 and torch.all(image == -1)
    assert dm.num_classes == 10


def test_cifar10_reads_python_pickles(tmp_path: Path):
    base = tmp_path / "data" / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(base / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [1, 2, 3, 4]}, f)
    # CHW row-major: a pure red first image in the first batch
    red = np.zeros((3, 32, 32), np.uint8)
    red[0] = 255
    with open(base / "data_batch_1", "wb") as f:
        pickle.dump({"data": np.stack([red.reshape(-1)] * 4), "labels": [7, 7, 7, 7]}, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    with mock.patch("torchvision.datasets.cifar.check_integrity", return_value=True):  # only the MD5 check
        dm = datamodule(tmp_path, "cifar10")
    assert (len(dm.train_set), len(dm.val_set)) == (20, 4)
    image, label = dm.train_set[0]
    assert label == 7
    assert torch.allclose(image[0], torch.ones(32, 32)) and torch.allclose(image[1:], -torch.ones(2, 32, 32))
    assert_contract(first_batch(dm), 3, 32)


def write_celeba(root: Path, n: int = 8) -> None:
    base = root / "celeba"
    (base / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for i, name in enumerate(names):
        image = np.full((218, 178, 3), 30 * i, np.uint8)
        Image.fromarray(image).save(base / "img_align_celeba" / name, quality=95)
    partition = [0, 0, 0, 0, 1, 1, 2, 2]  # torchvision needs >= 2 per split
    (base / "list_eval_partition.txt").write_text("".join(f"{n_} {p}\n" for n_, p in zip(names, partition)))
    (base / "identity_CelebA.txt").write_text("".join(f"{n_} {i + 1}\n" for i, n_ in enumerate(names)))
    attrs = [f"attr{i}" for i in range(40)]
    (base / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(attrs) + "\n" + "".join(f"{n_} " + " ".join(["1", "-1"] * 20) + "\n" for n_ in names))
    (base / "list_bbox_celeba.txt").write_text(f"{n}\nimage_id x_1 y_1 width height\n" + "".join(f"{n_} 1 2 3 4\n" for n_ in names))
    landmarks = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    (base / "list_landmarks_align_celeba.txt").write_text(f"{n}\n{landmarks}\n" + "".join(f"{n_} " + " ".join(["1"] * 10) + "\n" for n_ in names))


@pytest.mark.parametrize("point_at_celeba_folder", [False, True])
def test_celeba_reads_text_files_and_jpegs(tmp_path: Path, point_at_celeba_folder: bool):
    write_celeba(tmp_path / "data")
    root = tmp_path / "data" / ("celeba" if point_at_celeba_folder else "")
    with mock.patch("torchvision.datasets.celeba.check_integrity", return_value=True):  # only the MD5 check
        dm = datamodule(tmp_path, "celeba", f"data.root={root}", "data.batch_size=2")
    assert (len(dm.train_set), len(dm.val_set)) == (4, 2)  # the official partition file decides
    image, label = dm.train_set[1]
    assert label == -1 and image.shape == (3, 64, 64)
    assert torch.allclose(image, torch.full_like(image, 30 / 127.5 - 1), atol=0.03)  # JPEG of a flat grey 30
    assert_contract(first_batch(dm), 3, 64, labelled=False)


@pytest.mark.parametrize("data,names", [("mnist", "train-images-idx3-ubyte"), ("cifar10", "cifar-10-batches-py"), ("celeba", "img_align_celeba")])
def test_missing_dataset_names_the_files_and_the_fix(tmp_path: Path, data: str, names: str):
    with pytest.raises(FileNotFoundError) as err:
        datamodule(tmp_path, data)
    message = str(err.value)
    assert names in message and "data.download=true" in message and str(tmp_path / "data") in message


def test_folder_reads_images_recursively_in_both_colour_modes(tmp_path: Path):
    root = tmp_path / "data"
    (root / "a" / "b").mkdir(parents=True)
    Image.fromarray(np.full((80, 100, 3), 255, np.uint8)).save(root / "a" / "white.png")
    Image.fromarray(np.zeros((100, 80), np.uint8)).save(root / "a" / "b" / "black.JPG")
    (root / "notes.txt").write_text("not an image")
    dm = datamodule(tmp_path, "folder", "data.val_fraction=0", "data.image_size=32")
    assert len(dm.train_set) == 2
    values = sorted(float(dm.train_set[i][0].mean()) for i in range(2))
    assert values == pytest.approx([-1.0, 1.0], abs=0.02)
    assert dm.train_set[0][0].shape == (3, 32, 32)
    gray = datamodule(tmp_path, "folder", "data.val_fraction=0", "data.image_size=32", "data.channels=1")
    assert gray.train_set[0][0].shape == (1, 32, 32)


def test_folder_names_a_corrupt_image(tmp_path: Path):
    root = tmp_path / "data"
    root.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "good.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    dm = datamodule(tmp_path, "folder", "data.val_fraction=0")
    with pytest.raises(OSError, match=r"broken\.jpg.*re-encode"):
        [dm.train_set[i] for i in range(len(dm.train_set))]


def test_folder_without_images_says_where_it_looked(tmp_path: Path):
    (tmp_path / "data").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no images under data.root=.*data"):
        datamodule(tmp_path, "folder")


def test_mnist5k_is_the_real_embedded_digits(tmp_path: Path):
    images, labels = load_mnist5k()
    assert images.shape == (5000, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(torch.bincount(labels), torch.full((10,), 500))
    dm = datamodule(tmp_path, "mnist5k")
    assert (len(dm.train_set), len(dm.val_set)) == (4500, 500)
    batch = first_batch(dm)
    assert_contract(batch, 1, 32)
    images = batch.images
    # digits: mostly background (-1) with some bright strokes
    assert (images < -0.9).float().mean() > 0.6 and images.max() > 0.9


def test_split_is_deterministic_and_disjoint(tmp_path: Path):
    a, b = datamodule(tmp_path, "mnist5k"), datamodule(tmp_path, "mnist5k")
    assert a.val_set.indices == b.val_set.indices
    assert not set(a.val_set.indices) & set(a.train_set.indices)
