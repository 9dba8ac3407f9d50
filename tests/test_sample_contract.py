"""The one sampling contract: sample(n, *, condition=None, generator=None) -> (n, C, H, W) in [-1, 1]."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from conftest import SMALL, compose_config


@pytest.fixture(params=["gan", "dcgan"])
def model(request, tmp_path: Path):
    cfg = compose_config(tmp_path, [f"model={request.param}", "data.channels=3", *SMALL[request.param]])
    return instantiate(cfg.model)


def test_shape_and_range(model):
    images = model.sample(5)
    assert images.shape == (5, 3, 32, 32)
    assert images.min() >= -1 and images.max() <= 1


def test_seeded_generator_makes_sampling_deterministic(model):
    a = model.sample(4, generator=torch.Generator().manual_seed(7))
    b = model.sample(4, generator=torch.Generator().manual_seed(7))
    c = model.sample(4, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_sampling_leaves_the_model_state_untouched(model):
    # Sampling mid-training (grids, metrics) must not move BatchNorm running statistics or any parameter.
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.sample(16)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_sampling_restores_training_mode_and_tracks_no_grad(model):
    model.train()
    images = model.sample(2)
    assert model.generator.training and not images.requires_grad


def test_unconditional_model_rejects_a_condition(model):
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(2, condition=torch.zeros(2, dtype=torch.long))
