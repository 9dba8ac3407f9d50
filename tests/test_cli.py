"""train.py and eval.py as users call them: real Hydra runs, a multirun sweep, W&B offline without a login, runs
started together, what the console shows and what train.log keeps, bad input."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_script
from genlab.checkpoints import load_checkpoint

TINY = [
    "trainer.max_epochs=1",
    "++trainer.limit_train_batches=2",
    "callbacks.sample_grid.every_n_steps=2",
    "callbacks.sample_grid.num_samples=4",
    "trainer.log_every_n_steps=1",
]


SMALL = ["model.generator.width=8", "model.discriminator.width=8", "logger=csv", "metrics=none"]
# Third-party lines a user cannot act on; none of them may reach the console.
NOISE = ("litlogger", "LitLogger", "val_dataloader", "LeafSpec", "anonymous setting", "Run history", "Run summary")


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """No W&B login, no W&B mode, W&B not silenced: what a new user has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"HOME": str(tmp_path / "home"), "NETRC": str(tmp_path / "home" / ".netrc")}
    return env


@pytest.mark.slow
def test_multirun_makes_one_run_directory_per_job(tmp_path: Path, clean_env: dict[str, str]):
    result = run_script("train.py", 
        ["-m", "model=gan,dcgan", "seed=1,2", "logger=csv", "model.generator.latent_dim=8", *TINY], tmp_path, clean_env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "multiruns").iterdir()
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0_gan_mnist5k", "1_gan_mnist5k", "2_dcgan_mnist5k", "3_dcgan_mnist5k"]
    for job in jobs:
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()
        assert (sweep / job / "csv" / "metrics.csv").is_file()
        assert (sweep / job / "samples" / "step_000002.png").is_file()


@pytest.mark.slow
def test_wandb_without_login_runs_offline_and_says_how_to_sync(tmp_path: Path, clean_env: dict[str, str]):
    result = run_script("train.py", ["model.generator.width=8", "model.discriminator.width=8", *TINY], tmp_path, clean_env)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "no login found, logging offline" in output and "wandb sync" in output
    (run,) = (tmp_path / "outputs" / "runs").iterdir()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_dcgan_mnist5k", run.name)
    assert list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert (run / ".hydra" / "config.yaml").is_file()
    # the console: the choices, the overrides, the run directory (whole, one line), no config tree, no noise
    assert result.stdout.startswith("train  model=dcgan data=mnist5k trainer=default logger=wandb")
    assert "  overrides      model.generator.width=8 model.discriminator.width=8 trainer.max_epochs=1" in result.stdout
    assert result.stdout.count(f"  run directory  {run}\n") == 2  # before and after training
    assert "_target_" not in output and "generator:" not in output
    assert [noise for noise in NOISE if noise in output] == []
    assert f"  wandb          offline; upload with: wandb sync {run / 'wandb'}/offline-run-*" in result.stdout
    # train.log: all of it and the full resolved config
    log = (run / "train.log").read_text()
    assert f"run directory  {run}" in log and "Seed set to 42" in log and "no login found, logging offline" in log
    assert "resolved config:" in log and "_target_: pytorch_lightning.Trainer" in log
    assert "done\n" in log and "  trained        2 batches (4 optimizer steps)" in log
    assert f"checkpoints    {run / 'checkpoints'}" in log and "metrics        fid " in log


@pytest.mark.slow
def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path: Path):
    # Three real processes asking for the same run directory name (the default, but with only the year for time so
    # the names surely collide); each must end up with its own directory, config, checkpoint and summary.
    same_name = "hydra.run.dir='${unique_dir:outputs/runs/${now:%Y}_${hydra.runtime.choices.model}_${hydra.runtime.choices.data}}'"
    env = os.environ | {"WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "train.py"), same_name, f"seed={seed}", *SMALL, *TINY],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for seed in (1, 2, 3)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    runs = sorted((tmp_path / "outputs" / "runs").iterdir())
    base = runs[0].name
    assert [r.name for r in runs] == [base, f"{base}-2", f"{base}-3"] and base.endswith("_dcgan_mnist5k")
    for seed, (stdout, _) in zip((1, 2, 3), outputs):
        run = Path(re.search(r"^  run directory  (.+)$", stdout, re.MULTILINE).group(1))
        assert f"seed: {seed}\n" in (run / ".hydra" / "config.yaml").read_text()
        assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "csv" / "metrics.csv").is_file()
        assert f"resume with ckpt_path={run / 'checkpoints' / 'last.ckpt'}" in stdout
        assert f"run directory  {run}" in (run / "train.log").read_text()


@pytest.mark.slow
def test_max_steps_counts_optimizer_steps_two_per_gan_batch(tmp_path: Path):
    result = run_script(
        "train.py",
        ["trainer.max_steps=10", *SMALL, "callbacks.sample_grid.every_n_steps=1", "callbacks.sample_grid.num_samples=4"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "outputs" / "runs").iterdir()
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 10  # optimizer steps: a discriminator and a generator step per batch
    assert checkpoint["genlab"]["batches"] == 5  # genlab counts batches; a batch-end save precedes Lightning's own count
    assert sorted(p.name for p in (run / "samples").glob("step_*.png"))[-1] == "step_000005.png"
    assert "`max_steps=10` reached" in result.stdout and "  trained        5 batches (10 optimizer steps)\n" in result.stdout


@pytest.mark.slow
def test_mode_coverage_reaches_the_summary_and_print_config_full_prints_the_config(tmp_path: Path):
    result = run_script(
        "train.py",
        ["model=toy_gan", "data=ring8", "metrics=modes", "logger=csv", "trainer.max_epochs=1", "trainer.limit_train_batches=5",
         "callbacks.sample_metrics.num_samples=500", "print_config=full"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = re.search(r"^  metrics        (.+)$", result.stdout, re.MULTILINE).group(1)
    assert re.match(r"modes \d+, modes_high_quality [\d.e-]+, modes_reverse_kl [\d.e-]+  \(after batch 5, 500 samples\)", line)
    assert "_target_: genlab.metrics.modes.ModeCoverage" in result.stdout


def test_bad_input_prints_one_message_and_train_log_keeps_the_traceback(tmp_path: Path):
    missing = tmp_path / "nonexistent"
    result = run_script("train.py", ["data=folder", f"data.root={missing}"], tmp_path)
    assert result.returncode == 1
    (run,) = (tmp_path / "outputs" / "runs").iterdir()
    assert f"data=folder: data.root={missing} is not a directory" in result.stderr
    assert f"(traceback in {run / 'train.log'})" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr and "File \"" not in result.stderr
    log = (run / "train.log").read_text()
    assert "[ERROR] - failed: data=folder" in log and "Traceback (most recent call last)" in log and "folder.py" in log
    assert f"run directory  {run}" in log  # and what was run


def test_eval_error_goes_to_eval_log_of_its_own_directory(tmp_path: Path):
    result = run_script("eval.py", ["ckpt_path=nowhere/last.ckpt"], tmp_path)
    assert result.returncode == 1
    assert "ckpt_path=nowhere/last.ckpt: no such checkpoint" in result.stderr and "Traceback" not in result.stderr
    (evaluation,) = (tmp_path / "outputs" / "evals").iterdir()
    log = (evaluation / "eval.log").read_text()
    assert "eval\n  overrides      ckpt_path=nowhere/last.ckpt\n" in log and f"eval directory  {evaluation}" in log
    assert "Traceback (most recent call last)" in log and "RunNotFoundError" in log


def test_unknown_choice_on_the_command_line_lists_options(tmp_path: Path, clean_env: dict[str, str]):
    result = run_script("train.py", ["data=cifar100"], tmp_path, clean_env)
    assert result.returncode != 0
    assert "Could not find 'data/cifar100'" in result.stderr and "cifar10" in result.stderr
