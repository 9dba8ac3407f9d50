"""A run resumed from any of its checkpoints ends bit for bit where the uninterrupted run ends: every tensor of the
final checkpoint (weights, both optimizers, the module's and the global RNG states), mid-epoch and across epochs.
A SIGTERM or Ctrl-C stops a real ``train.py`` process within seconds with a checkpoint a resume reads."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import ROOT, compose_config, tensors
from genlab.checkpoints import load_checkpoint
from genlab.run import train

# 1000 points in batches of 100: 10 batches an epoch; a checkpoint every 4 batches (4, 8, 12, ...)
TOY = ["model=toy_gan", "data=ring8", "model.generator.hidden=[16,16]", "model.discriminator.hidden=[16,16]",
       "data.num_points=1000", "trainer.max_epochs=3", "callbacks.model_checkpoint.every_n_batches=4"]
QUIET = ["print_config=false", "trainer.accelerator=cpu", "++trainer.enable_model_summary=false", "logger=none",
         "metrics=none", "callbacks.sample_grid.every_n_steps=null", "~callbacks.rich_progress_bar"]


def fit(tmp_path: Path, name: str, overrides: list[str]) -> Path:
    train(compose_config(tmp_path / name, [*QUIET, *overrides]))
    return tmp_path / name / "run" / "checkpoints"


def assert_same_end(a: Path, b: Path) -> None:
    expected, got = tensors(load_checkpoint(a)), tensors(load_checkpoint(b))
    assert expected.keys() == got.keys()
    differ = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not differ, f"{len(differ)} of {len(expected)} tensors differ, e.g. {differ[:4]}"
    # the comparison covers the weights, both optimizers and the random streams
    assert any(k.startswith("/optimizer_states/1/state") for k in expected) and "/genlab_rng_state" in expected
    assert any("global_rng/torch" in k for k in expected)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    return fit(tmp_path_factory.mktemp("uninterrupted"), "full", TOY)


@pytest.mark.parametrize("checkpoint", ["batch_0000008.ckpt", "batch_0000012.ckpt"], ids=["epoch0_batch8", "epoch1_batch2"])
def test_resuming_a_periodic_checkpoint_ends_bit_for_bit_like_the_uninterrupted_run(uninterrupted: Path, tmp_path: Path, checkpoint):
    # what a run killed (SIGKILL) after that batch leaves behind: resume from it in another directory
    resumed = fit(tmp_path, "resumed", [*TOY, f"ckpt_path={uninterrupted / checkpoint}"])
    assert_same_end(uninterrupted / "last.ckpt", resumed / "last.ckpt")
    assert load_checkpoint(resumed / "last.ckpt")["genlab"]["batches"] == 30


def test_a_run_stopped_at_an_epoch_boundary_resumes_bit_for_bit(uninterrupted: Path, tmp_path: Path):
    part = fit(tmp_path, "part", [*TOY, "max_batches=10"])
    assert load_checkpoint(part / "last.ckpt")["genlab"]["batches"] == 10
    resumed = fit(tmp_path, "part", [*TOY, f"ckpt_path={part / 'last.ckpt'}"])
    assert_same_end(uninterrupted / "last.ckpt", resumed / "last.ckpt")


def test_a_per_batch_lr_schedule_resumes_bit_for_bit(tmp_path: Path):
    # the linear decay of experiment=toy_ring8 over the 30 batches: every batch trains at its own lr, so a schedule
    # saved one batch behind the weights would show up in every later weight
    decay = [*TOY, "+model.scheduler._target_=genlab.schedules.linear_decay_by_batch", "+model.scheduler._partial_=true",
             "+model.scheduler.constant_batches=0", "+model.scheduler.decay_batches=30"]
    full = fit(tmp_path, "full", decay)
    resumed = fit(tmp_path, "resumed", [*decay, f"ckpt_path={full / 'batch_0000012.ckpt'}"])
    assert_same_end(full / "last.ckpt", resumed / "last.ckpt")
    lrs = [group["lr"] for state in load_checkpoint(full / "last.ckpt")["optimizer_states"] for group in state["param_groups"]]
    assert lrs == pytest.approx([1e-4 / 30] * 2)  # toy_gan's lr, at the last of 30 batches


def test_dropout_draws_from_the_restored_global_stream(tmp_path: Path):
    # model=gan: its discriminator has dropout, drawn from the global torch RNG, which the checkpoint restores
    gan = ["model=gan", "data=mnist5k", "data.batch_size=16", "++trainer.limit_train_batches=4", "trainer.max_epochs=2",
           "model.generator.hidden=[16,32]", "model.discriminator.hidden=[32,16]",
           "callbacks.model_checkpoint.every_n_batches=3"]
    full = fit(tmp_path, "full", gan)
    resumed = fit(tmp_path, "resumed", [*gan, f"ckpt_path={full / 'batch_0000003.ckpt'}"])
    assert_same_end(full / "last.ckpt", resumed / "last.ckpt")


def test_checkpoints_are_unique_per_save_and_last_is_the_newest(uninterrupted: Path):
    names = sorted(p.name for p in uninterrupted.iterdir())
    assert names == [f"batch_{b:07d}.ckpt" for b in (4, 8, 12, 16, 20, 24, 28, 30)] + ["last.ckpt"]
    assert (uninterrupted / "last.ckpt").read_bytes() == (uninterrupted / "batch_0000030.ckpt").read_bytes()
    for path in uninterrupted.iterdir():  # every file genlab writes loads with the safe loader
        torch.load(path, map_location="cpu", weights_only=True)


def test_max_batches_is_a_budget_in_batches_whatever_the_model(tmp_path: Path):
    ckpt = fit(tmp_path, "budget", [*TOY, "max_batches=7"]) / "last.ckpt"
    checkpoint = load_checkpoint(ckpt)
    assert checkpoint["genlab"]["batches"] == 7 and checkpoint["global_step"] == 14  # two optimizer steps per GAN batch


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_train_py_within_seconds_with_a_checkpoint(tmp_path: Path, signum):
    args = [*TOY, "trainer.max_epochs=1000", "callbacks.model_checkpoint.every_n_batches=100000", *QUIET[1:], "logger=csv"]
    env = os.environ | {"WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = None
    deadline = time.monotonic() + 120
    while metrics is None or metrics.stat().st_size < 2000:  # a few logged steps: training is under way
        assert process.poll() is None and time.monotonic() < deadline, "the run did not start training"
        metrics = next((tmp_path / "outputs").glob("runs/*/csv/metrics.csv"), None)
        time.sleep(0.2)
    sent = time.monotonic()
    process.send_signal(signum)
    output, _ = process.communicate(timeout=60)
    seconds = time.monotonic() - sent
    assert process.returncode == 128 + signum, output[-3000:]
    # 0.1 s from the signal to SystemExit; the rest is interpreter teardown (7 s for any torch process on a loaded
    # 2-core machine), so the bound is loose
    assert seconds < 30, f"took {seconds:.1f} s to stop"
    (ckpt,) = (tmp_path / "outputs").glob("runs/*/checkpoints/last.ckpt")
    checkpoint = load_checkpoint(ckpt)
    assert checkpoint["genlab"]["batches"] > 0 and f"stopped (exit status {128 + signum})" in output
    assert f"batch_{checkpoint['genlab']['batches']:07d}.ckpt" in {p.name for p in ckpt.parent.iterdir()}


def test_a_resume_goes_on_in_the_same_run_directory_and_wandb_run(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    common = [*TOY, *QUIET, "logger=wandb", "trainer.max_epochs=1"]
    first = compose_config(tmp_path, [*common, "max_batches=4", f"paths.output_dir={tmp_path / 'first'}"])
    (tmp_path / "first" / ".hydra").mkdir(parents=True)
    OmegaConf.save(first, tmp_path / "first" / ".hydra" / "config.yaml")  # what Hydra writes into every run
    train(first)
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    run_id = load_checkpoint(ckpt)["genlab"]["wandb_run_id"]
    # a new invocation gets its own Hydra directory; the run it continues is the checkpoint's
    train(compose_config(tmp_path, [*common, f"ckpt_path={ckpt}", f"paths.output_dir={tmp_path / 'second'}"]))
    assert not (tmp_path / "second").exists()
    resumed = load_checkpoint(ckpt)
    assert resumed["genlab"]["batches"] == 10 and resumed["genlab"]["wandb_run_id"] == run_id
    assert f"resumed from last.ckpt (batch 4); log and config: {tmp_path / 'second'}" in (tmp_path / "first" / "resumed.log").read_text()
    # one W&B run: both offline folders carry its id (W&B appends -1 when both starts fall in the same second)
    folders = sorted((tmp_path / "first" / "wandb").glob("offline-run-*"))
    assert len(folders) == 2 and all(re.fullmatch(rf"offline-run-\d{{8}}_\d{{6}}-{run_id}(-\d+)?", f.name) for f in folders), folders


def test_a_resumed_run_keeps_its_csv_log_and_replaces_the_rows_after_the_checkpoint(tmp_path: Path):
    # a run that went on past its batch-12 checkpoint (as one killed at batch 30 would have), resumed from that
    # checkpoint into its own directory: its metrics.csv ends as the uninterrupted run's, row for row
    common = [*TOY, *QUIET, "logger=csv", "trainer.log_every_n_steps=2"]
    cfg = compose_config(tmp_path, [*common, f"paths.output_dir={tmp_path / 'run'}"])
    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, tmp_path / "run" / ".hydra" / "config.yaml")
    train(cfg)
    log = tmp_path / "run" / "csv" / "metrics.csv"
    uninterrupted = log.read_text()
    steps = [int(line.split(",")[-1]) for line in uninterrupted.splitlines()[1:]]
    assert len(steps) == 15 and steps == sorted(steps)  # a row every 2nd of the 30 batches
    checkpoint = tmp_path / "run" / "checkpoints" / "batch_0000012.ckpt"
    train(compose_config(tmp_path, [*common, f"ckpt_path={checkpoint}", f"paths.output_dir={tmp_path / 'second'}"]))
    assert log.read_text() == uninterrupted
