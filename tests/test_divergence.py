"""A diverging run stops with the batch, the culprit and what to try; its last.ckpt keeps the last finite weights,
and eval.py refuses a checkpoint with NaN weights instead of writing black images."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import CONF_DIR, SMALL_TOY, compose_config
from genlab.callbacks.divergence import DivergenceGuard, TrainingDiverged
from genlab.checkpoints import CheckpointError, load_checkpoint
from genlab.evaluate import evaluate
from genlab.run import train

TOY = [*SMALL_TOY, "data.num_points=1000", "trainer.max_epochs=1", "logger=none", "callbacks.sample_grid.every_n_steps=1",
       "callbacks.model_checkpoint.every_n_batches=1"]
# plain SGD with an absurd learning rate: finite for a batch or two, then inf/NaN
HUGE_LR = ["model.optimizer.discriminator._target_=torch.optim.SGD", "~model.optimizer.discriminator.betas",
           "model.optimizer.discriminator.lr=1e3", "model.optimizer.generator._target_=torch.optim.SGD",
           "~model.optimizer.generator.betas", "model.optimizer.generator.lr=1e3"]


@pytest.fixture(scope="module")
def diverged(tmp_path_factory) -> tuple[Path, TrainingDiverged]:
    tmp_path = tmp_path_factory.mktemp("diverged")
    cfg = compose_config(tmp_path, [*TOY, *HUGE_LR])
    with pytest.raises(TrainingDiverged) as err:
        train(cfg)
    run = tmp_path / "run"
    (run / ".hydra").mkdir()
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    return run, err.value


def test_divergence_stops_the_run_naming_the_batch_and_the_fixes(diverged):
    run, err = diverged
    message = str(err)
    assert message.startswith("Training diverged at batch ")
    assert "= nan" in message and "non-finite weights in generator." in message
    assert "lower learning rate (now 1000)" in message and "model.n_critic" in message and "wgan_gp" in message


def test_no_checkpoint_or_sample_grid_of_the_diverged_batch_is_written(diverged):
    run, err = diverged
    batch = int(str(err).split("batch ")[1].split(" ")[0])
    checkpoints = sorted((run / "checkpoints").iterdir())
    assert [p.name for p in checkpoints] == [f"batch_{b:07d}.ckpt" for b in range(1, batch)] + ["last.ckpt"]
    last = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert last["genlab"]["batches"] == batch - 1
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
    grids = sorted(p.name for p in (run / "samples").glob("step_*.png"))
    assert grids == [f"step_{b:06d}.png" for b in range(1, batch)]


def test_eval_refuses_nan_weights(diverged, tmp_path: Path):
    run, _ = diverged
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")
    checkpoint["state_dict"]["generator.net.0.weight"][0, 0] = float("nan")
    poisoned = run / "checkpoints" / "poisoned.ckpt"
    torch.save(checkpoint, poisoned)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=["mode=sample", f"ckpt_path={poisoned}", "num_samples=2", f"out_dir={tmp_path / 'out'}"])
    with pytest.raises(CheckpointError, match="non-finite weights .*generator.net.0.weight.*diverged"):
        evaluate(cfg)
    assert not (tmp_path / "out").exists()


def test_warn_lets_the_run_go_on_but_never_saves_nan_weights(tmp_path: Path):
    train(compose_config(tmp_path, [*TOY, *HUGE_LR, "callbacks.divergence.action=warn", "++trainer.limit_train_batches=5"]))
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert last["genlab"]["batches"] < 5  # the NaN batches were not saved
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_bad_settings_are_refused_with_the_key():
    with pytest.raises(ValueError, match="callbacks.divergence.action must be one of"):
        DivergenceGuard(action="ignore")
    with pytest.raises(ValueError, match="callbacks.divergence.patience"):
        DivergenceGuard(patience=0)
