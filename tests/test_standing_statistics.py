"""Standing statistics (model.standing_statistics): the measured BatchNorm statistics are the averages over the
drawn batches, sampling is deterministic and leaves the training noise alone, training is unchanged, and sampling
with them matches the generator's train-mode output on a large batch more closely than training's running averages."""

import pickle
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from conftest import SMALL_TOY, compose_config, tensors
from genlab.models.standing_statistics import check_standing_statistics, measure_standing_statistics
from genlab.run import train

TOY = [*SMALL_TOY, "data.num_points=2000", "trainer.max_epochs=1", "logger=none"]
STANDING = "model.standing_statistics={batches: 4, batch_size: 500}"


def test_measured_statistics_are_the_averages_over_the_drawn_batches():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5, momentum=0.3), nn.ReLU(), nn.Linear(5, 2), nn.BatchNorm1d(2))
    inputs = [torch.randn(64, 3) * 2 + 1 for _ in range(6)]
    batches = iter(inputs)
    net.train()
    measure_standing_statistics(net, lambda n: net(next(batches)[:n]), batches=6, batch_size=64)

    first = [net[0](x).detach() for x in inputs]  # what the first BatchNorm saw
    assert torch.allclose(net[1].running_mean, torch.stack([h.mean(0) for h in first]).mean(0), atol=1e-5)
    assert torch.allclose(net[1].running_var, torch.stack([h.var(0) for h in first]).mean(0), atol=1e-5)
    assert (net[1].momentum, net[4].momentum) == (0.3, 0.1)  # restored
    assert not net.training


def test_a_net_without_batch_norm_is_left_alone():
    net = nn.Linear(2, 2)
    calls = []
    measure_standing_statistics(net, calls.append, batches=3, batch_size=8)
    assert calls == [] and net.training


@pytest.mark.parametrize("bad", [{"batches": 0, "batch_size": 10}, {"batches": 2}, {"batches": 2, "batch_size": 1.5},
                                 {"samples": 10, "batch_size": 10}, 20])
def test_bad_settings_are_refused_with_the_expected_form(bad):
    with pytest.raises((ValueError, TypeError), match="model.standing_statistics must be null or"):
        check_standing_statistics(bad)


def train_toy(tmp_path: Path, *extra: str) -> dict[str, torch.Tensor]:
    cfg = compose_config(tmp_path, [*TOY, "max_batches=9", "callbacks.sample_grid.every_n_steps=3", *extra])
    train(cfg)
    return tensors(torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"])


def test_training_is_unchanged_and_only_the_statistics_differ(tmp_path: Path):
    # sample grids every 3 batches sample mid-run: with standing statistics each of them measures first
    plain = train_toy(tmp_path / "plain")
    standing = train_toy(tmp_path / "standing", STANDING)
    statistics = {k for k in plain if "running_" in k}
    assert statistics and all(torch.equal(plain[k], standing[k]) for k in plain if k not in statistics and "num_batches" not in k)
    assert any(not torch.equal(plain[k], standing[k]) for k in statistics)


def toy_model(tmp_path: Path, *extra: str):
    return instantiate(compose_config(tmp_path, [*TOY, *extra]).model)


def test_sampling_is_deterministic_and_leaves_the_training_noise_alone(tmp_path: Path):
    model = toy_model(tmp_path, STANDING)
    before = model.rng.get_state()
    first = model.sample(50, generator=torch.Generator().manual_seed(1))
    model._statistics_measured = False  # measured again, from the same stream: the same statistics
    second = model.sample(50, generator=torch.Generator().manual_seed(1))
    assert torch.equal(first, second)
    assert torch.equal(model.rng.get_state(), before)
    assert model.generator.training  # the mode it was in


def test_loading_weights_measures_again_and_the_module_still_pickles(tmp_path: Path):
    model = toy_model(tmp_path, STANDING)
    model.sample(4)
    assert model._statistics_measured
    model.load_state_dict(model.state_dict())
    assert not model._statistics_measured
    copy = pickle.loads(pickle.dumps(model))  # strategy=ddp_spawn pickles the module
    copy.sample(4)
    copy.load_state_dict(model.state_dict())
    assert not copy._statistics_measured


def test_standing_statistics_match_the_train_mode_generator_better_than_running_averages(tmp_path: Path):
    """After a short run, eval-mode samples are compared with the train-mode output on one batch of 4000 (statistics
    of the generator's own output distribution, nearly exact): standing statistics come closer than the running
    averages training kept."""
    cfg = compose_config(tmp_path, [*TOY, "max_batches=60", "callbacks.sample_grid.every_n_steps=null"])
    train(cfg)
    model = toy_model(tmp_path / "m")
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    model.load_state_dict(state)
    z = torch.randn(4000, model.latent_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        reference = model.generator.train()(z)
    errors = {}
    for setting in (None, {"batches": 8, "batch_size": 1000}):
        model.load_state_dict(state)
        model.standing_statistics = setting
        errors[str(setting)] = (model.decode(z) - reference).abs().mean().item()
    assert errors[str({"batches": 8, "batch_size": 1000})] < 0.5 * errors["None"], errors
