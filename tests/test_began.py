"""BEGAN: the equilibrium control against a hand computation, the autoencoder energy, the paper's preset, and short
real training runs (k_t follows Eq. 4 step by step and is checkpointed; the convergence measure M falls)."""

import csv
from pathlib import Path

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from conftest import FAST, compose_config
from genlab.checkpoints import load_checkpoint
from genlab.models.began import convergence_measure, equilibrium_update
from genlab.nets import BEGANDecoder, BEGANDiscriminator
from genlab.run import train

# 16 px digits and n = 4: two conv blocks (16 -> 8), seconds per run; ~demo: the preset's settings, not the demo's
# recipe for the default data (conf/demo/began_mnist5k.yaml)
TINY = ["model=began", "~demo", "data.image_size=16", "data.batch_size=16", "model.generator.width=4"]


def logged_rows(run: Path) -> list[dict[str, float]]:
    """The CSV logger's training rows that carry the BEGAN control values, in step order."""
    with open(run / "csv" / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row.get("began/k")]
    return [{k: float(v) for k, v in row.items() if v != ""} for row in rows]


def test_the_k_update_matches_a_hand_computation_and_clips_to_the_unit_interval():
    # k + lambda_k (gamma L(x) - L(G(z))) = 0.3 + 0.001 * (0.5 * 0.2 - 0.05) = 0.30005
    assert equilibrium_update(0.3, real_loss=0.2, fake_loss=0.05, gamma=0.5, lambda_k=0.001) == pytest.approx(0.30005)
    assert equilibrium_update(0.3, real_loss=0.2, fake_loss=0.35, gamma=0.5, lambda_k=0.001) == pytest.approx(0.29975)
    assert equilibrium_update(0.9995, real_loss=1.0, fake_loss=0.0, gamma=0.5, lambda_k=0.01) == 1.0  # 1.0045 clipped
    assert equilibrium_update(0.0, real_loss=0.2, fake_loss=0.3, gamma=0.5, lambda_k=0.001) == 0.0  # -0.0002 clipped
    # M = L(x) + |gamma L(x) - L(G(z))| = 0.2 + |0.1 - 0.35|
    assert convergence_measure(0.2, 0.35, gamma=0.5) == pytest.approx(0.45)


def test_the_discriminator_scores_samples_by_their_reconstruction_energy():
    torch.manual_seed(0)
    net = BEGANDiscriminator(channels=1, image_size=32, width=4, hidden_dim=8)
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    energy = net(x)
    assert energy.shape == (3,)
    assert torch.allclose(energy, (x - net.reconstruct(x)).abs().mean((1, 2, 3)))
    assert net.features(x).shape == (3, 8)
    # depth follows the resolution with the paper's fixed 8x8 embedding: 32 px -> widths n, 2n, 3n; 64 px -> up to 4n
    assert net.encoder.embed.in_features == 3 * 4 * 8 * 8
    assert BEGANDiscriminator(1, 64, width=4).encoder.embed.in_features == 4 * 4 * 8 * 8
    assert BEGANDecoder(latent_dim=8, channels=3, image_size=64, width=4)(torch.zeros(2, 8)).shape == (2, 3, 64, 64)


def test_a_resolution_the_nets_cannot_reach_from_8x8_is_refused_with_the_key_to_fix():
    with pytest.raises(ValueError, match=r"image_size = 8 \* 2\^k.*data\.image_size"):
        BEGANDecoder(latent_dim=8, channels=1, image_size=28)


def test_the_preset_has_the_paper_settings_and_refuses_settings_outside_their_range(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=began", "data=celeba"])  # real data: the paper's settings
    assert (cfg.model.gamma, cfg.model.lambda_k, cfg.model.k_initial) == (0.5, 0.001, 0.0)
    for opt in cfg.model.optimizer.values():
        assert opt._target_ == "torch.optim.Adam" and opt.lr == 1e-4
    assert cfg.model.generator.latent_dim == cfg.model.discriminator.hidden_dim == 64  # N_z = N_h = 64
    model = instantiate(cfg.model)
    assert float(model.k) == 0.0 and "k" in model.state_dict()
    z = model.draw_latent(1000, generator=torch.Generator().manual_seed(0)).z
    assert z.min() >= -1 and z.max() <= 1 and z.mean().abs() < 0.05  # U[-1, 1], not N(0, 1)
    for key, value in (("gamma", 0.0), ("lambda_k", -1.0), ("k_initial", 1.5)):
        with pytest.raises(InstantiationException, match=f"model.{key}"):
            instantiate(compose_config(tmp_path, ["model=began", "~demo", f"model.{key}={value}"]).model)


def test_k_follows_the_equilibrium_update_each_step_and_is_checkpointed(tmp_path: Path):
    # a large gain so that k moves visibly and reaches the upper clip within the run
    cfg = compose_config(tmp_path, [*FAST, *TINY, "logger=csv", "model.lambda_k=2.0"])
    train(cfg)
    rows = logged_rows(tmp_path / "run")
    assert len(rows) == 6
    k = 0.0
    for row in rows:  # the logged k is k_{t+1}, from that step's L(x) (d/real_score) and L(G(z)) (d/fake_score)
        real, fake = row["d/real_score"], row["d/fake_score"]
        assert row["loss/d"] == pytest.approx(real - k * fake, abs=1e-5)  # L_D with the k_t the step started with
        k = equilibrium_update(k, real, fake, gamma=0.5, lambda_k=2.0)
        assert row["began/k"] == pytest.approx(k, abs=1e-6)
        assert row["began/convergence"] == pytest.approx(real + abs(0.5 * real - fake), rel=1e-5)
    assert k == 1.0  # clipped
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert float(checkpoint["state_dict"]["k"]) == pytest.approx(k)


@pytest.mark.slow
def test_the_convergence_measure_falls_over_a_short_run(tmp_path: Path):
    # 10x the paper's learning rate, so that 30 batches are enough for the autoencoder to start reconstructing digits
    fast = ["model.optimizer.generator.lr=1e-3", "model.optimizer.discriminator.lr=1e-3"]
    cfg = compose_config(tmp_path, [*FAST, *TINY, *fast, "logger=csv", "++trainer.limit_train_batches=30"])
    train(cfg)
    measure = [row["began/convergence"] for row in logged_rows(tmp_path / "run")]
    assert len(measure) == 30
    start, end = sum(measure[:5]) / 5, sum(measure[-5:]) / 5
    assert end < 0.8 * start, (start, end)
