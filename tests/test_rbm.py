"""The RBM: CD statistics against a hand computation, exact and AIS log Z against brute force, a normalised
likelihood, binary data enforced, and a short real training run that beats the independent-pixel model."""

import itertools
import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from conftest import FAST, compose_config
from genlab.checkpoints import load_checkpoint
from genlab.models import RestrictedBoltzmannMachine
from genlab.models.rbm import ais_log_partition, annealing_schedule, contrastive_divergence_gradients
from genlab.nets import BernoulliRBM
from genlab.run import train

# 14x14 binarised digits, 16 hidden units: exact log Z (2^16 states) and seconds per run
TINY = ["model=rbm", "data=mnist5k_binary", "data.image_size=14", "model.hidden_units=16", "model.sample_steps=20",
        "callbacks.chain_grid.steps=[1,5,20]"]


def rbm_with(weight, visible_bias, hidden_bias) -> BernoulliRBM:
    rbm = BernoulliRBM(len(visible_bias), len(hidden_bias))
    with torch.no_grad():
        rbm.weight.copy_(torch.tensor(weight))
        rbm.visible_bias.copy_(torch.tensor(visible_bias))
        rbm.hidden_bias.copy_(torch.tensor(hidden_bias))
    return rbm


def random_rbm(visible: int, hidden: int, seed: int = 0) -> BernoulliRBM:
    torch.manual_seed(seed)
    rbm = BernoulliRBM(visible, hidden, init_std=1.0)
    with torch.no_grad():
        rbm.visible_bias.normal_()
        rbm.hidden_bias.normal_()
    return rbm


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_the_cd_gradient_matches_a_hand_computation_on_a_3x2_rbm():
    rbm = rbm_with([[1.0, -1.0], [0.5, 2.0], [-1.5, 0.0]], [0.1, -0.2, 0.3], [0.2, -0.4])
    v_data, v_model = torch.tensor([[1.0, 0.0, 1.0]]), torch.tensor([[0.0, 1.0, 1.0]])
    # p(h | v) = sigmoid(c + v W), by hand
    h_data = [sigmoid(0.2 + 1.0 - 1.5), sigmoid(-0.4 - 1.0 + 0.0)]
    h_model = [sigmoid(0.2 + 0.5 - 1.5), sigmoid(-0.4 + 2.0 + 0.0)]
    expected_weight = [[-(v_data[0, i].item() * h_data[j] - v_model[0, i].item() * h_model[j]) for j in range(2)] for i in range(3)]
    gradients = contrastive_divergence_gradients(rbm, v_data, v_model)
    assert torch.allclose(gradients["weight"], torch.tensor(expected_weight), atol=1e-6)
    assert torch.allclose(gradients["visible_bias"], torch.tensor([-1.0, 1.0, 0.0]))
    assert torch.allclose(gradients["hidden_bias"], -(torch.tensor(h_data) - torch.tensor(h_model)), atol=1e-6)
    # the same numbers are the gradient of F(v_data) - F(v_model): CD minimises that free-energy difference
    (rbm.free_energy(v_data) - rbm.free_energy(v_model)).sum().backward()
    for name, parameter in rbm.named_parameters():
        assert torch.allclose(parameter.grad, gradients[name], atol=1e-6), name


def test_exact_log_z_equals_the_sum_over_every_joint_state():
    rbm = random_rbm(3, 2)
    energies = []
    for v in itertools.product([0.0, 1.0], repeat=3):
        for h in itertools.product([0.0, 1.0], repeat=2):
            v_, h_ = torch.tensor(v), torch.tensor(h)
            energies.append(float(v_ @ rbm.visible_bias + h_ @ rbm.hidden_bias + v_ @ rbm.weight @ h_))
    assert float(rbm.exact_log_partition()) == pytest.approx(math.log(sum(math.exp(e) for e in energies)), abs=1e-5)
    with pytest.raises(ValueError, match="AIS"):
        BernoulliRBM(4, 21).exact_log_partition()


def test_ais_estimates_log_z_of_a_tiny_rbm_within_a_small_tolerance():
    rbm = random_rbm(25, 10)  # weights ~ N(0, 1): a far sharper model than the base distribution it anneals from
    exact = float(rbm.exact_log_partition())
    estimate = ais_log_partition(rbm, torch.zeros(25), runs=100, num_betas=3000, generator=torch.Generator().manual_seed(0))
    assert estimate.log_z == pytest.approx(exact, abs=0.1)
    assert estimate.log_z_low < estimate.log_z < estimate.log_z_high
    betas = annealing_schedule(14500)  # the paper's schedule exactly: 500 / 4,000 / 10,000 betas
    assert len(betas) == 14501 and betas[0] == 0 and betas[500] == 0.5 and betas[4500] == pytest.approx(0.9) and betas[-1] == 1


def test_the_likelihood_of_a_small_rbm_sums_to_one_over_all_images():
    torch.manual_seed(0)
    model = RestrictedBoltzmannMachine(channels=1, image_size=2, hidden_units=3, optimizer=torch.optim.SGD)
    with torch.no_grad():
        model.rbm.weight.normal_()
    images = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=4))).view(16, 1, 2, 2)
    assert float(model.log_likelihood(images).exp().sum()) == pytest.approx(1.0, abs=1e-5)
    chain = model.gibbs_chain(5, [1, 3], torch.Generator().manual_seed(0))
    assert chain.shape == (2, 5, 1, 2, 2) and chain.min() >= -1 and chain.max() <= 1
    assert torch.equal(chain[1], model.gibbs_chain(5, [3], torch.Generator().manual_seed(0))[0])  # one chain, snapshots


def test_grey_images_are_refused_with_the_data_to_use(tmp_path: Path):
    cfg = compose_config(tmp_path, [*FAST, *TINY, "data=mnist5k", "data.image_size=14", "logger=none"])
    with pytest.raises(ValueError, match="binary pixels.*data=mnist5k_binary"):
        train(cfg)


@pytest.mark.slow
def test_a_short_run_beats_independent_pixels_and_writes_chains_filters_and_free_energy(tmp_path: Path):
    # full 28x28 digits (exact log Z still: 16 hidden units)
    cfg = compose_config(tmp_path, [*FAST, *TINY, "data.image_size=28", "logger=none", "trainer.max_epochs=2",
                                    "++trainer.limit_train_batches=30", "model.initial_momentum_epochs=1"])
    metrics = train(cfg)
    run = tmp_path / "run"
    # the base-rate model (independent pixels at the training on-rates) is where training starts from: W ~ 0
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    train_pixels = torch.stack([image for image, _ in datamodule.train_set]).flatten(1).add(1).div(2)
    rates = (train_pixels.sum(0) + 1) / (len(train_pixels) + 2)
    held_out = torch.cat([b.images for b in datamodule.val_dataloader()]).flatten(1).add(1).div(2)
    independent_nll = -(held_out * rates.log() + (1 - held_out) * (-rates).log1p()).sum(1).mean()
    assert metrics["val/nll_nats"] < float(independent_nll) - 10, (metrics["val/nll_nats"], float(independent_nll))
    assert math.isfinite(metrics["val/free_energy"]) and math.isfinite(metrics["val/free_energy_gap"])
    for folder in ("samples", "chains", "filters"):
        assert list((run / folder).glob("*.png")), folder
    state = load_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"]
    assert bool(state["base_rates_fitted"]) and torch.allclose(state["base_rate_logits"], rates.log() - (-rates).log1p(), atol=1e-4)


def test_persistent_chains_are_updated_and_checkpointed(tmp_path: Path):
    cfg = compose_config(tmp_path, [*FAST, *TINY, "logger=none", "model.persistent=true", "model.persistent_chains=10",
                                    "++trainer.limit_train_batches=3"])
    assert float(instantiate(cfg.model).chains.mean()) == pytest.approx(0.5, abs=0.1)  # fantasy chains start as noise
    train(cfg)
    chains = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["state_dict"]["chains"]
    assert chains.shape == (10, 196) and set(chains.unique().tolist()) <= {0.0, 1.0}
    assert float(chains.mean()) < 0.35  # after three updates they sample sparse, digit-like images, not noise
