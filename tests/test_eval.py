"""Metrics during training, eval.py on a real run, and the sampling mode: real train.py / eval.py processes."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from conftest import CONF_DIR, SMALL_GAN, run_script
from genlab.checkpoints import RunNotFoundError
from genlab.evaluate import evaluate

TINY_RUN = [
    "model.generator.width=8",
    "model.discriminator.width=8",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "trainer.log_every_n_steps=1",
    "print_config=false",
    "logger=csv",
    "callbacks.sample_grid.every_n_steps=4",
    "callbacks.sample_grid.num_samples=4",
    "callbacks.model_checkpoint.every_n_epochs=1",
    "callbacks.sample_metrics.every_n_steps=2",  # metrics (the default metrics=mnist) after batches 2 and 4
]
METRIC_KEYS = {"fid", "kid", "kid_std", "is", "is_std", "is_real", "pr_precision", "pr_recall", "pr_f_score", "classes_covered", "classes_kl_uniform"}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """``python train.py`` with the default metrics, shrunk to four batches."""
    return train_run(tmp_path_factory.mktemp("project"), TINY_RUN)


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory) -> Path:
    """A 6-batch fully connected GAN: its samples vary with the latent (the 4-batch DCGAN above still draws a flat grey,
    outputs within 0.01 of 0, one 8-bit level, whatever the seed)."""
    overrides = ["model=gan", *SMALL_GAN, "trainer.max_epochs=1", "trainer.limit_train_batches=6", "print_config=false",
                 "logger=none", "metrics=none", "callbacks.model_checkpoint.every_n_epochs=1"]
    return train_run(tmp_path_factory.mktemp("mlp"), overrides)


def train_run(cwd: Path, overrides: list[str]) -> Path:
    """``python train.py <overrides>`` in ``cwd`` as a real process; its run directory."""
    result = run_script("train.py", overrides, cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (cwd / "outputs" / "runs").iterdir()
    return run


def eval_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("eval", overrides=list(overrides))


@pytest.mark.slow
def test_default_training_logs_classifier_metrics_and_keeps_them_out_of_checkpoints(trained_run: Path):
    with open(trained_run / "csv" / "metrics.csv") as f:
        all_rows = list(csv.DictReader(f))
    rows = [row for row in all_rows if row.get("metrics/fid")]
    assert len(rows) == 2, "an evaluation after batch 2 and one after batch 4"
    # Logged at the step of that batch's losses (batches, not GAN optimizer steps): one x-axis for all curves.
    assert [row["step"] for row in rows] == ["1", "3"]
    assert {row["step"] for row in rows} <= {row["step"] for row in all_rows if row.get("loss/d")}
    for row in rows:
        for key in METRIC_KEYS:
            assert math.isfinite(float(row[f"metrics/{key}"])), key
        assert 0 <= float(row["metrics/classes_covered"]) <= 10

    checkpoint = torch.load(trained_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    keys = list(checkpoint["state_dict"])
    # the nets and the default run's generator EMA; no metric extractor weights
    assert keys and all(k.startswith(("generator.", "generator_ema.", "discriminator.")) for k in keys), keys
    flat = json.dumps({k: str(v)[:200] for k, v in checkpoint.get("callbacks", {}).items()})
    assert "inception" not in flat.lower() and "classifier" not in flat.lower()
    assert not any("SampleMetrics" in key for key in checkpoint.get("callbacks", {}))


@pytest.mark.slow
def test_eval_py_scores_a_checkpoint_and_writes_eval_json(trained_run: Path):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    result = run_script("eval.py", [f"ckpt_path={ckpt}", "num_samples=1000"], trained_run.parents[2])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((ckpt.parent / "eval.json").read_text())
    assert METRIC_KEYS | {f"classes_fraction_{c}" for c in range(10)} <= set(report["metrics"])
    assert all(math.isfinite(v) for v in report["metrics"].values())
    assert report["num_samples"] == 1000 and report["global_step"] > 0 and report["metrics_from"] == "the run's config"
    assert report["reference"]["num_samples"] == 4500 and report["reference"]["extractor"] == "mnist-classifier"
    assert Image.open(ckpt.parent / "eval_samples.png").size == (8 * 34 + 2, 8 * 34 + 2)
    assert "fid" in result.stdout and "classes_covered" in result.stdout


@pytest.mark.slow
def test_sample_mode_writes_seeded_png_files(mlp_run: Path, tmp_path: Path):
    ckpt = mlp_run / "checkpoints" / "last.ckpt"

    def sample(folder: str, seed: int) -> list[bytes]:
        evaluate(eval_config("mode=sample", f"ckpt_path={ckpt}", "num_samples=7", "batch_size=3", f"seed={seed}", f"out_dir={tmp_path / folder}"))
        return [p.read_bytes() for p in sorted((tmp_path / folder).iterdir())]

    first, again, other = sample("a", 3), sample("b", 3), sample("c", 4)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [f"{i:06d}.png" for i in range(7)]
    assert first == again, "same checkpoint and seed must give byte-identical files"
    assert first != other
    with Image.open(tmp_path / "a" / "000000.png") as image:
        assert image.mode == "L" and image.size == (32, 32)
    with pytest.raises(FileExistsError, match="overwrite=true"):
        sample("a", 3)


def test_eval_errors_name_the_missing_checkpoint_or_run_config(tmp_path: Path):
    with pytest.raises(RunNotFoundError, match=r"ckpt_path=.*nope.ckpt: no such checkpoint"):
        evaluate(eval_config(f"ckpt_path={tmp_path / 'nope.ckpt'}"))
    lonely = tmp_path / "somewhere" / "checkpoints" / "last.ckpt"
    lonely.parent.mkdir(parents=True)
    torch.save({"state_dict": {}}, lonely)
    with pytest.raises(RunNotFoundError, match=r"No run config at .*\.hydra/config\.yaml(.|\n)*run_dir="):
        evaluate(eval_config(f"ckpt_path={lonely}"))
    with pytest.raises(RunNotFoundError, match="No run config"):
        evaluate(eval_config("mode=sample", f"ckpt_path={lonely}", f"out_dir={tmp_path / 'out'}"))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_complete_mode_writes_a_completion_grid_that_keeps_the_given_pixels(tmp_path: Path):
    cwd = tmp_path / "project"
    cwd.mkdir()
    result = run_script(
        "train.py",
        ["model=pixelrnn", "data=mnist5k_binary", "model.net.hidden=16", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
         "print_config=false", "logger=none", "callbacks.sample_grid.num_samples=2", "callbacks.model_checkpoint.every_n_epochs=1"],
        cwd,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (ckpt,) = (cwd / "outputs" / "runs").glob("*/checkpoints/last.ckpt")
    evaluate(eval_config("mode=complete", f"ckpt_path={ckpt}", "completion_images=4", "completion_fractions=[0.5]", "device=cpu"))
    grid = torch.from_numpy(np.array(Image.open(ckpt.parent / "completion.png").convert("L"))).float()
    cell, pad = 28, 2
    assert grid.shape == (3 * (cell + pad) + pad, 4 * (cell + pad) + pad)  # rows: original, covered, completed
    rows = [grid[pad + r * (cell + pad): pad + r * (cell + pad) + cell] for r in range(3)]
    top = slice(0, cell // 2)  # 50 % given in raster order = the top 14 rows of each 28x28 digit
    assert torch.equal(rows[0][top], rows[2][top]) and torch.equal(rows[0][top], rows[1][top])
    assert not torch.equal(rows[1][cell // 2:], rows[2][cell // 2:])  # the covered half was filled in


@pytest.mark.parametrize("data,expected,unexpected", [
    ("mnist5k", "metrics=mnist", "cifar10-train"),
    ("cifar10", "--input2 cifar10-train", "metrics=mnist"),
    ("celeba", "real CelebA images", "cifar10-train"),
])
def test_sample_mode_suggests_a_reference_that_matches_the_run_data(tmp_path: Path, data: str, expected: str, unexpected: str):
    from conftest import compose_config
    from genlab.evaluate import fid_reference_hint

    hint = fid_reference_hint(compose_config(tmp_path, [f"data={data}"]), tmp_path / "gen")
    assert expected in hint and unexpected not in hint and str(tmp_path / "gen") in hint
