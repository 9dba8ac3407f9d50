"""train.py as users call it: a real Hydra run, a multirun sweep, W&B offline without a login."""

import os
from pathlib import Path

import pytest

from conftest import run_script

TINY = [
    "trainer.max_epochs=1",
    "++trainer.limit_train_batches=2",
    "callbacks.sample_grid.every_n_steps=2",
    "callbacks.sample_grid.num_samples=4",
    "trainer.log_every_n_steps=1",
]


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """No W&B login, no W&B mode: what a new user has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"HOME": str(tmp_path / "home"), "NETRC": str(tmp_path / "home" / ".netrc"), "WANDB_SILENT": "true"}
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
    assert list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert (run / ".hydra" / "config.yaml").is_file()
    assert f"run directory  {run}" in result.stdout.replace("\n", " ") or str(run) in result.stdout


def test_unknown_choice_on_the_command_line_lists_options(tmp_path: Path, clean_env: dict[str, str]):
    result = run_script("train.py", ["data=cifar100"], tmp_path, clean_env)
    assert result.returncode != 0
    assert "Could not find 'data/cifar100'" in result.stderr and "cifar10" in result.stderr
