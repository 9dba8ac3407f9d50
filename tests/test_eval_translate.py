"""``eval.py mode=translate``: a folder of images of any size and mode through a trained translator's test-time view,
written as same-named PNGs (StarGAN: one folder per target domain); files that are not images are skipped with a note;
missing or empty folders and unknown target domains are errors."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from conftest import CONF_DIR, run_script
from genlab.checkpoints import load_model, load_run
from genlab.data.batch import DomainTransfer
from genlab.data.translation.images import to_tensor
from genlab.evaluate import evaluate
from genlab.metrics.extractors import to_uint8


def eval_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("eval", overrides=list(overrides))


def trained_checkpoint(cwd: Path, model: list[str]) -> Path:
    """The last checkpoint of a 3-batch run of ``model`` (tiny nets), as ``python train.py`` writes it in ``cwd``."""
    result = run_script("train.py", [
        *model, "trainer.max_epochs=1", "trainer.limit_train_batches=3", "metrics=none", "logger=none",
        "print_config=false", "callbacks.sample_grid.num_samples=4", "callbacks.model_checkpoint.every_n_epochs=1",
    ], cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    (ckpt,) = (cwd / "outputs" / "runs").glob("*/checkpoints/last.ckpt")
    return ckpt


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A pix2pix run on mnist_edges2digits."""
    return trained_checkpoint(tmp_path_factory.mktemp("project"), [
        "model=pix2pix", "data=mnist_edges2digits", "model.generator.width=8", "model.discriminator.width=8"])


@pytest.mark.slow
def test_translate_mode_writes_same_named_pngs_at_the_training_size(checkpoint: Path, tmp_path: Path, capsys):
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    exact = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(exact).save(inputs / "exact.png")  # grey 32x32: what the model sees unchanged
    Image.fromarray(rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)).save(inputs / "photo.jpg")  # RGB, odd size
    Image.fromarray(rng.integers(0, 256, (20, 20, 4), dtype=np.uint8), "RGBA").save(inputs / "sub" / "alpha.png")
    Image.fromarray(rng.integers(0, 8, (33, 33), dtype=np.uint8), "P").save(inputs / "palette.png")
    (inputs / "notes.txt").write_text("not an image")
    (inputs / "broken.png").write_bytes(b"not a png at all")
    out = tmp_path / "out"

    values = evaluate(eval_config("mode=translate", f"ckpt_path={checkpoint}", f"input_dir={inputs}", f"out_dir={out}", "device=cpu"))

    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["exact.png", "palette.png", "photo.png", "sub/alpha.png"]
    assert values["num_images"] == 4 and values["skipped"] == 2
    for name in written:
        image = Image.open(out / name)
        assert image.size == (32, 32) and image.mode == "L"  # the run's image_size and target channels
    report = capsys.readouterr().out.replace("\n", " ")
    assert "notes.txt (not an image file)" in report and "broken.png (does not decode" in report
    # the output is the model's translation of the input, as sample(condition=...) gives it
    _, _, run_cfg = load_run(checkpoint)
    model, _ = load_model(run_cfg, checkpoint, torch.device("cpu"))
    expected = to_uint8(model.sample(1, condition=to_tensor(Image.fromarray(exact))[None]))[0, 0].numpy()
    assert np.array_equal(np.asarray(Image.open(out / "exact.png")), expected)


@pytest.mark.slow
def test_translate_mode_names_a_missing_or_empty_folder(checkpoint: Path, tmp_path: Path):
    run = lambda folder: evaluate(eval_config("mode=translate", f"ckpt_path={checkpoint}", f"input_dir={folder}", "device=cpu"))  # noqa: E731
    with pytest.raises(FileNotFoundError, match=r"input_dir=.*nowhere: no such folder"):
        run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no images.*it is empty"):
        run(tmp_path / "empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "readme.md").write_text("hi")
    with pytest.raises(FileNotFoundError, match="holds no images.*1 other files, e.g. readme.md"):
        run(tmp_path / "text")
    with pytest.raises(ValueError, match="needs input_dir=DIR"):
        evaluate(eval_config("mode=translate", f"ckpt_path={checkpoint}", "device=cpu"))


@pytest.mark.slow
def test_metrics_mode_scores_a_translator_with_the_translation_metrics(checkpoint: Path, tmp_path: Path):
    values = evaluate(eval_config(f"ckpt_path={checkpoint}", "metrics=translation", "num_samples=100", "batch_size=50",
                                  "metrics.kid.subset_size=50", "device=cpu", f"out_dir={tmp_path}"))
    assert 0 < values["l1"] < 2 and values["psnr"] > 0 and -1 <= values["ssim"] <= 1
    assert 0 <= values["class_preservation"] <= 1 and values["fid"] >= 0
    assert (tmp_path / "eval.json").is_file()


@pytest.fixture(scope="module")
def stargan_checkpoint(tmp_path_factory) -> Path:
    """A StarGAN run on mnist_domains, as ``python train.py model=stargan`` writes it."""
    return trained_checkpoint(tmp_path_factory.mktemp("stargan_project"), [
        "model=stargan", "model.generator.conv_dim=8", "model.generator.repeat_num=1", "model.discriminator.conv_dim=8"])


@pytest.mark.slow
def test_stargan_translate_mode_writes_one_png_per_input_and_target_domain(stargan_checkpoint: Path, tmp_path: Path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    exact = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(exact).save(inputs / "exact.png")  # RGB 32x32: what the model sees unchanged
    Image.fromarray(rng.integers(0, 256, (45, 61), dtype=np.uint8)).save(inputs / "grey.jpg")  # grey, odd size
    Image.fromarray(rng.integers(0, 256, (20, 20, 4), dtype=np.uint8), "RGBA").save(inputs / "alpha.png")
    out = tmp_path / "out"

    values = evaluate(eval_config("mode=translate", f"ckpt_path={stargan_checkpoint}", f"input_dir={inputs}",
                                  f"out_dir={out}", "target=[thick,inverted]", "device=cpu"))

    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == [f"to_{domain}/{name}.png" for domain in ("inverted", "thick") for name in ("alpha", "exact", "grey")]
    assert values["num_images"] == 6
    assert all(Image.open(out / name).size == (32, 32) and Image.open(out / name).mode == "RGB" for name in written)
    # each file is the model's translation of the input into that domain (domain ids: the sorted folder names)
    _, _, run_cfg = load_run(stargan_checkpoint)
    model, _ = load_model(run_cfg, stargan_checkpoint, torch.device("cpu"))
    assert model.domain_names == ["coloured", "inverted", "plain", "thick"]  # kept in the checkpoint
    source = to_tensor(Image.fromarray(exact))[None]
    for domain in ("inverted", "thick"):
        target = torch.tensor([model.domain_names.index(domain)])
        expected = to_uint8(model.sample(1, condition=DomainTransfer(source, target)))[0].permute(1, 2, 0).numpy()
        assert np.array_equal(np.asarray(Image.open(out / f"to_{domain}" / "exact.png")), expected)

    every = evaluate(eval_config("mode=translate", f"ckpt_path={stargan_checkpoint}", f"input_dir={inputs}",
                                 f"out_dir={tmp_path / 'all'}", "device=cpu"))  # no target: every domain
    assert every["num_images"] == 12 and sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        "to_coloured", "to_inverted", "to_plain", "to_thick"]


@pytest.mark.slow
def test_an_unknown_target_domain_is_refused_with_the_valid_ones(stargan_checkpoint: Path, checkpoint: Path, tmp_path: Path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.new("RGB", (32, 32)).save(inputs / "a.png")
    with pytest.raises(ValueError, match=r"unknown target domain bold; this model's domains are coloured, inverted, plain, thick"):
        evaluate(eval_config("mode=translate", f"ckpt_path={stargan_checkpoint}", f"input_dir={inputs}", "target=[thick,bold]",
                             "device=cpu"))
    with pytest.raises(ValueError, match=r"target=thick: .*translates one way"):  # pix2pix has no domains
        evaluate(eval_config("mode=translate", f"ckpt_path={checkpoint}", f"input_dir={inputs}", "target=thick", "device=cpu"))
