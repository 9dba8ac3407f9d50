"""``model.steps_per_batch``: a loader batch of K x B trains exactly as K batches of B (weights, optimizer states and
the training noise's stream all equal, with n_critic steps counted across the slices), logs its last step's losses,
resumes bit for bit from a checkpoint, and bad values are refused."""

from pathlib import Path

import pytest
import torch

from conftest import SMALL_TOY, compose_config, tensors
from genlab.checkpoints import load_checkpoint
from genlab.models import AdversarialModule
from genlab.nets import ToyMLPDiscriminator, ToyMLPGenerator
from genlab.run import train
from test_resume import TOY as RESUME_TOY, assert_same_end, fit
from test_step_overhead import logged_rows

# 2000 points: 20 batches of 100 or 5 of 400 an epoch; n_critic 3 puts generator steps inside and across slices
TOY = [*SMALL_TOY, "data.num_points=2000", "trainer.max_epochs=2", "model.n_critic=3", "logger=csv",
       "trainer.log_every_n_steps=1", "callbacks.sample_grid.every_n_steps=null"]


def training_state(checkpoint: Path) -> dict[str, torch.Tensor]:
    """What training made: weights, both optimizers' states and the module's noise stream (not the loop counters,
    which count loader batches)."""
    state = load_checkpoint(checkpoint)
    return tensors({k: state[k] for k in ("state_dict", "optimizer_states", "genlab_rng_state")})


def assert_equal_states(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> None:
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert torch.equal(value, got[key]), key


def run(tmp_path: Path, *overrides: str) -> dict[str, torch.Tensor]:
    train(compose_config(tmp_path, [*TOY, *overrides]))
    return training_state(tmp_path / "run" / "checkpoints" / "last.ckpt")


def test_a_batch_of_k_slices_trains_as_k_batches(tmp_path: Path):
    # 24 batches of 100 cross an epoch boundary (20 a epoch); so do 6 batches of 4 x 100
    one_step = run(tmp_path / "one", "data.batch_size=100", "max_batches=24")
    four_steps = run(tmp_path / "four", "data.batch_size=400", "model.steps_per_batch=4", "max_batches=6")
    assert any("generator" in k for k in one_step) and any("optimizer_states" in k for k in one_step)
    assert_equal_states(one_step, four_steps)
    # n_critic counts the steps of each epoch: G stepped at steps 3, 6, .., 18 of the first and at step 3 of the second
    steps = {k.split("/")[2]: float(v) for k, v in one_step.items() if k.endswith("/state/0/step")}
    assert steps == {"0": 24.0, "1": 7.0}  # optimizers: discriminator, generator

    # what is logged at a loader batch is its last step's losses (and the last generator step's)
    reference, bundled = logged_rows(tmp_path / "one" / "run"), logged_rows(tmp_path / "four" / "run")
    assert sorted(bundled) == list(range(6))
    for batch, values in bundled.items():
        last_step = 4 * batch + 3
        assert values["loss/d"] == pytest.approx(reference[last_step]["loss/d"], rel=1e-6)
        last_generator_step = max(s for s in range(last_step + 1) if (s % 20 + 1) % 3 == 0)
        assert values["loss/g"] == pytest.approx(reference[last_generator_step]["loss/g"], rel=1e-6)


@pytest.mark.parametrize("bad", [0, -2])
def test_bad_steps_per_batch_is_refused(bad: int):
    nets = {"generator": ToyMLPGenerator(2, 2, (4,)), "discriminator": ToyMLPDiscriminator(dim=2, hidden=(4,))}
    with pytest.raises(ValueError, match=rf"model.steps_per_batch must be a positive integer .*got {bad}"):
        AdversarialModule(**nets, optimizer={"generator": None, "discriminator": None},
                          loss={"discriminator": None, "generator": None}, steps_per_batch=bad)


def test_a_run_of_two_steps_a_batch_resumes_bit_for_bit_and_ends_as_one_step_a_batch(tmp_path: Path):
    # 1000 points: 5 batches of 2 x 100 an epoch, 15 in 3 epochs; resume from batch 8 (mid epoch 1)
    bundled = [*RESUME_TOY, "data.batch_size=200", "model.steps_per_batch=2"]
    full = fit(tmp_path, "full", bundled)
    resumed = fit(tmp_path, "resumed", [*bundled, f"ckpt_path={full / 'batch_0000008.ckpt'}"])
    assert_same_end(full / "last.ckpt", resumed / "last.ckpt")
    assert load_checkpoint(full / "last.ckpt")["genlab"]["batches"] == 15
    # and its 30 steps are the 30 batches of 100 of the same run without bundling
    one_step = fit(tmp_path, "one_step", RESUME_TOY)
    assert_equal_states(training_state(one_step / "last.ckpt"), training_state(full / "last.ckpt"))


def test_a_loader_batch_that_does_not_split_into_equal_steps_is_refused_before_training(tmp_path: Path):
    cfg = compose_config(tmp_path, [*TOY, "data.batch_size=100", "model.steps_per_batch=8", "max_batches=2"])
    with pytest.raises(ValueError, match=r"data.batch_size=100 does not divide by it.*data.batch_size=800"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()
