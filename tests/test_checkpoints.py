"""Checkpoints are read with torch.load(weights_only=True): a crafted .ckpt cannot run code in eval.py or on resume,
and a truncated one or one from another model gives one clear error."""

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import CONF_DIR, FAST, SMALL_DCGAN, compose_config
from genlab.checkpoints import AtomicCheckpointIO, CheckpointError, load_checkpoint
from genlab.evaluate import evaluate
from genlab.run import train


class Payload:
    """Unpickling this calls os.makedirs(marker): the shape of a real attack (any callable, any arguments)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.makedirs, (self.marker,)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A real 6-batch DCGAN run: its .hydra/config.yaml and a genuine last.ckpt."""
    tmp_path = tmp_path_factory.mktemp("trained")
    cfg = compose_config(tmp_path, ["model=dcgan", *FAST, *SMALL_DCGAN, "logger=none"])
    train(cfg)
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    return run


def eval_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("eval", overrides=list(overrides))


def malicious_copy(run: Path, marker: Path) -> Path:
    """The run's real checkpoint with one extra entry whose unpickling runs os.makedirs(marker)."""
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")
    checkpoint["evil"] = Payload(marker)
    path = run / "checkpoints" / "malicious.ckpt"
    torch.save(checkpoint, path)
    return path


def test_the_payload_fixture_really_runs_code_under_a_full_unpickle(trained_run: Path, tmp_path: Path):
    # Without this, the tests below would pass for a payload that does nothing.
    marker = tmp_path / "pwned_by_full_unpickle"
    torch.load(malicious_copy(trained_run, marker), weights_only=False)
    assert marker.is_dir()


def test_eval_refuses_a_checkpoint_that_would_run_code(trained_run: Path, tmp_path: Path):
    marker = tmp_path / "pwned"
    ckpt = malicious_copy(trained_run, marker)
    for mode in ("metrics", "sample"):
        with pytest.raises(CheckpointError, match="Refusing to load .*malicious.ckpt.*run code"):
            evaluate(eval_config(f"mode={mode}", f"ckpt_path={ckpt}", "num_samples=10", f"out_dir={tmp_path / mode}", "metrics=mnist"))
        assert not marker.exists(), f"mode={mode}: the payload ran"


def test_resume_refuses_a_checkpoint_that_would_run_code(trained_run: Path, tmp_path: Path):
    marker = tmp_path / "pwned_on_resume"
    ckpt = malicious_copy(trained_run, marker)
    cfg = compose_config(tmp_path, ["model=dcgan", *FAST, *SMALL_DCGAN, "logger=none", "trainer.max_epochs=2", f"ckpt_path={ckpt}"])
    with pytest.raises(CheckpointError, match="Refusing to load .*malicious.ckpt"):
        train(cfg)
    assert not marker.exists()


def test_a_genuine_checkpoint_loads_safely_and_keeps_the_module_rng(trained_run: Path):
    checkpoint = load_checkpoint(trained_run / "checkpoints" / "last.ckpt")
    assert {"state_dict", "optimizer_states", "loops"} <= set(checkpoint)
    # the module's own random stream is checkpointed (a uint8 state the safe loader reads)
    assert checkpoint["genlab_rng_state"].dtype == torch.uint8


def test_a_truncated_checkpoint_gives_one_clear_error(trained_run: Path, tmp_path: Path):
    data = (trained_run / "checkpoints" / "last.ckpt").read_bytes()
    truncated = trained_run / "checkpoints" / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        evaluate(eval_config("mode=sample", f"ckpt_path={truncated}", "num_samples=2", f"out_dir={tmp_path / 'out'}"))
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_of_another_model_says_so(trained_run: Path, tmp_path: Path):
    other = trained_run / "checkpoints" / "other_model.ckpt"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}}, other)
    with pytest.raises(CheckpointError, match="does not fit the model of its run config"):
        evaluate(eval_config("mode=sample", f"ckpt_path={other}", "num_samples=2", f"out_dir={tmp_path / 'out'}"))


@pytest.mark.parametrize("content", [b"", b"\x8f\x02garbage" * 100], ids=["empty", "random_bytes"])
def test_an_empty_or_garbage_file_is_not_a_genlab_checkpoint(tmp_path: Path, content: bytes):
    path = tmp_path / "last.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"{path}.* not a genlab checkpoint"):
        load_checkpoint(path)


def test_resume_with_another_model_says_which_model_wrote_the_checkpoint(trained_run: Path, tmp_path: Path):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    cfg = compose_config(tmp_path, ["model=vae", *FAST, "logger=none", f"ckpt_path={ckpt}"])
    with pytest.raises(CheckpointError, match=r"written by genlab\.models\.adversarial\.AdversarialModule.*do not fit genlab\.models\.VariationalModule: \d+ missing"):
        train(cfg)


def test_a_save_killed_midway_leaves_the_previous_file_whole(trained_run: Path, tmp_path: Path):
    target = tmp_path / "last.ckpt"
    target.write_bytes((trained_run / "checkpoints" / "last.ckpt").read_bytes())

    class Unpicklable:
        def __reduce__(self):
            raise KeyboardInterrupt  # stands in for a kill in the middle of torch.save

    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "x": Unpicklable()}, target)
    assert load_checkpoint(target)["state_dict"].keys() == load_checkpoint(trained_run / "checkpoints" / "last.ckpt")["state_dict"].keys()
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left behind
