"""VAE and CVAE: closed-form KL, the IWAE bound (k = 1 is the ELBO; it tightens with k on a trained model), short
training lowers held-out NLL, the sampling contract, and full train runs with the reconstruction, traversal and
held-out-likelihood callbacks."""

import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from PIL import Image
from torch.distributions import Normal, kl_divergence

from conftest import FAST, compose_config, fit_bare
from genlab.evaluation import held_out_nll
from genlab.models.vae import gaussian_kl
from genlab.run import train

SMALL_VAE = ["model.encoder.width=8", "model.encoder.latent_dim=8"]


def make_vae(tmp_path: Path, *overrides: str):
    cfg = compose_config(tmp_path, ["model=vae", "data=mnist5k_binary", *SMALL_VAE, *overrides])
    torch.manual_seed(0)
    return cfg, instantiate(cfg.model)


def test_kl_term_equals_the_closed_form():
    torch.manual_seed(0)
    mean, log_var = torch.randn(5, 7), torch.randn(5, 7)
    expected = kl_divergence(Normal(mean, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(gaussian_kl(mean, log_var), expected, atol=1e-5)
    assert torch.allclose(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))


def test_iwae_with_one_sample_is_the_elbo(tmp_path: Path):
    _, vae = make_vae(tmp_path)
    x = torch.where(torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0)) > 0.7, 1.0, -1.0)
    vae.eval()
    with torch.no_grad():
        # the same noise: the k=1 bound is exactly the single-sample ELBO with the sampled KL
        iwae = vae.iwae_bound(x, importance_samples=1, generator=torch.Generator().manual_seed(3))
        elbo = vae.elbo(x, analytic_kl=False, generator=torch.Generator().manual_seed(3))["elbo"]
        assert torch.allclose(iwae, elbo, atol=1e-3)
        # and in expectation the ELBO with the closed-form KL: 300 independent draws per image, 4 standard errors
        repeated = x.repeat(300, 1, 1, 1)
        torch.manual_seed(0)
        sampled = vae.iwae_bound(repeated, importance_samples=1)
        analytic = vae.elbo(repeated)["elbo"]
        tolerance = 4 * math.sqrt((sampled.var() + analytic.var()) / len(repeated))
        assert abs(sampled.mean() - analytic.mean()) < tolerance


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory):
    """A VAE after 60 Adam steps on binarised MNIST-5k, with the held-out NLL (IWAE k=10) before and after."""
    tmp_path = tmp_path_factory.mktemp("vae")
    cfg, vae = make_vae(tmp_path, "model.optimizer.lr=2e-3", "trainer.max_epochs=1", "trainer.max_steps=60",
                        "trainer.accelerator=cpu", "++trainer.enable_progress_bar=false", "++trainer.enable_model_summary=false")
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    torch.manual_seed(1)
    before = held_out_nll(vae, datamodule.val_dataloader(), max_batches=2, importance_samples=10)["val/nll_nats"]
    fit_bare(cfg, vae, datamodule)
    torch.manual_seed(1)
    after = held_out_nll(vae, datamodule.val_dataloader(), max_batches=2, importance_samples=10)["val/nll_nats"]
    return vae, datamodule, before, after


# 60 steps take an untrained VAE from ~545 nats (784 Bernoulli(0.5)-ish pixels) to well under 250 nats.
VAE_NLL_DROP = 0.5


@pytest.mark.slow
def test_short_training_lowers_held_out_nll(trained_vae):
    _, _, before, after = trained_vae
    assert after < (1 - VAE_NLL_DROP) * before, (before, after)


@pytest.mark.slow
def test_iwae_bound_tightens_with_k_on_a_trained_model(trained_vae):
    vae, datamodule, _, _ = trained_vae
    images = next(iter(datamodule.val_dataloader())).images
    bounds = []
    for k in (1, 5, 50):
        torch.manual_seed(0)
        bounds.append(float(vae.log_likelihood(images, importance_samples=k).mean()))
    # non-decreasing in k (Burda et al. Thm 1); the means over 64 images are far apart relative to their noise
    assert bounds[0] < bounds[1] < bounds[2], bounds
    assert bounds[2] - bounds[0] > 1.0


@pytest.mark.slow
def test_sampling_contract_and_reconstruction(trained_vae):
    vae, datamodule, _, _ = trained_vae
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    a = vae.sample(4, generator=torch.Generator().manual_seed(0))
    assert a.shape == (4, 1, 28, 28) and a.min() >= -1 and a.max() <= 1 and not a.requires_grad
    assert torch.equal(a, vae.sample(4, generator=torch.Generator().manual_seed(0)))
    assert all(torch.equal(before[k], v) for k, v in vae.state_dict().items())
    with pytest.raises(ValueError, match="unconditional"):
        vae.sample(2, condition=torch.zeros(2, dtype=torch.long))
    images = next(iter(datamodule.val_dataloader())).images
    recon = vae.reconstruct(images)
    assert recon.shape == images.shape
    # a trained VAE reconstructs its input better than it matches other digits
    assert (recon - images).abs().mean() < (recon - images.roll(1, 0)).abs().mean()


def test_cvae_conditions_on_labels(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=cvae", "data=mnist5k_binary", *SMALL_VAE])
    cvae = instantiate(cfg.model)
    assert cvae.conditional and cvae.num_classes == 10 and cvae.encoder.num_classes == 10
    z = torch.randn(3, 8)
    with torch.no_grad():
        assert not torch.allclose(cvae.decode(z, torch.tensor([0, 0, 0])), cvae.decode(z, torch.tensor([7, 7, 7])))
    assert cvae.sample(10).shape == (10, 1, 28, 28)  # no condition: one of each class
    with pytest.raises(ValueError, match="labels"):
        cvae.reconstruct(torch.zeros(2, 1, 28, 28))
    with pytest.raises(Exception, match="num_classes"):
        instantiate(compose_config(tmp_path, ["model=cvae", "data=mnist5k_binary", "data.num_classes=0"]).model)


def test_kl_warmup_ramps_beta(tmp_path: Path):
    _, vae = make_vae(tmp_path, "model.kl_warmup_steps=100", "model.beta=0.5")
    assert vae.kl_weight() == 0.0  # global_step is 0 before training
    vae.kl_warmup_steps = 0
    assert vae.kl_weight() == 0.5


def test_gaussian_likelihood_reports_bits_per_dim_with_the_bin_correction(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=vae", "model.likelihood=gaussian", *SMALL_VAE])  # default mnist5k, 32 px
    vae = instantiate(cfg.model)
    images = torch.rand(3, 1, 32, 32) * 2 - 1
    ll = vae.log_likelihood(images, importance_samples=3)
    assert ll.shape == (3,) and torch.isfinite(ll).all()
    d = 32 * 32
    assert torch.allclose(vae.bits_per_dim(-ll, images), (-ll + d * math.log(128)) / (d * math.log(2)))


@pytest.mark.parametrize("model", ["vae", "cvae"])
def test_train_run_writes_reconstruction_and_traversal_grids(tmp_path: Path, model: str):
    cfg = compose_config(tmp_path, [f"model={model}", "data=mnist5k_binary", *FAST, *SMALL_VAE, "logger=csv",
                                    "model.importance_samples=2", "callbacks.held_out_likelihood.max_batches=1",
                                    "callbacks.latent_traversal.steps=5"])
    metrics = train(cfg)
    for key in ("train/elbo", "train/kl", "train/reconstruction", "val/nll_nats", "val/bits_per_dim"):
        assert math.isfinite(metrics[key]), key
    assert math.isclose(metrics["val/bits_per_dim"], metrics["val/nll_nats"] / (784 * math.log(2)), rel_tol=1e-4)
    run = tmp_path / "run"
    recon = Image.open(run / "reconstructions" / "epoch_000.png")
    assert recon.size == (8 * 30 + 2, 8 * 30 + 2)  # 32 images + 32 reconstructions, 8 per row, 28 px + 2 padding
    traversals = sorted(p.name for p in (run / "traversals").glob("*.png"))
    if model == "vae":
        assert traversals == ["grid_epoch_000.png"]
        assert Image.open(run / "traversals" / traversals[0]).size == (5 * 30 + 2, 5 * 30 + 2)
    else:  # one row per class for each of the two dimensions
        assert traversals == ["dim_0_epoch_000.png", "dim_1_epoch_000.png"]
        assert Image.open(run / "traversals" / traversals[0]).size == (5 * 30 + 2, 10 * 30 + 2)
    assert not (run / "completions").exists(), "VAEs cannot complete images: that callback leaves them alone"
    assert (run / "csv" / "metrics.csv").read_text().count("val/nll_nats") == 1
