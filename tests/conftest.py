"""Shared fixtures: compose the real Hydra config the way train.py does, with run paths under tmp_path."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"

# Never prompt, never reach the network: tests that want real offline runs set WANDB_MODE=offline themselves.
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

# Small nets and few batches keep a full training run to seconds on a 2-core CPU.
FAST_TRAINER = [
    "trainer.max_epochs=1",
    "++trainer.limit_train_batches=6",
    "trainer.accelerator=cpu",
    "++trainer.enable_model_summary=false",
    "print_config=false",
    "trainer.log_every_n_steps=1",
]
FAST = [
    *FAST_TRAINER,
    "metrics=none",  # sample metrics have their own tests (test_metrics.py, test_eval.py with the default metrics)
    "callbacks.sample_grid.every_n_steps=3",
    "callbacks.sample_grid.num_samples=16",
    "callbacks.sample_grid.nrow=4",
]
SMALL_DCGAN = ["model.generator.width=8", "model.discriminator.width=8"]
SMALL_GAN = ["model.generator.hidden=[32,64]", "model.discriminator.hidden=[64,32]"]
SMALL = {"dcgan": SMALL_DCGAN, "gan": SMALL_GAN}
# The 2-D toy GAN on 16-unit nets, quiet and on the CPU: a run of a few batches takes a second.
SMALL_TOY = ["model=toy_gan", "data=ring8", "model.generator.hidden=[16,16]", "model.discriminator.hidden=[16,16]",
             "print_config=false", "trainer.accelerator=cpu", "metrics=none", "++trainer.enable_model_summary=false"]


def compose_config(tmp_path: Path, overrides: list[str] = ()) -> DictConfig:
    """The composed train config with run directory and data directory inside ``tmp_path``."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            config_name="train",
            overrides=[f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}", *overrides],
        )


def fit_bare(cfg: DictConfig, module, datamodule=None):
    """Fit ``module`` under the config's Trainer alone (no logger, no callbacks) on ``datamodule``, by default the
    config's data; return the Trainer."""
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    trainer.fit(module, datamodule=instantiate(cfg.data) if datamodule is None else datamodule)
    return trainer


@pytest.fixture(scope="session", autouse=True)
def reference_feature_cache(tmp_path_factory):
    """Real-data features that metrics cache (genlab.metrics.reference) go to one folder per test session, never
    to the user's ~/.cache; runs inside the session share it, as runs of one user do."""
    if "GENLAB_CACHE_DIR" not in os.environ:
        os.environ["GENLAB_CACHE_DIR"] = str(tmp_path_factory.mktemp("genlab_cache"))
    yield


@pytest.fixture
def make_config(tmp_path):
    def make(*overrides: str) -> DictConfig:
        return compose_config(tmp_path, list(overrides))

    return make


def run_script(script: str, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run one of the repo's entry points (``train.py``, ``eval.py``) as users do: a real process in ``cwd``.
    Without ``env``, W&B is disabled."""
    env = env if env is not None else os.environ | {"WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def tensors(tree, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in a checkpoint, by its path of keys."""
    if isinstance(tree, torch.Tensor):
        return {prefix: tree}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, (list, tuple)) else ()
    return {k: v for key, value in items for k, v in tensors(value, f"{prefix}/{key}").items()}
