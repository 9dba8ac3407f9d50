"""InfoGAN (Chen et al. 2016): the information losses against hand-computed values, the codes reaching the
generator (sampling, the Fig. 2 grid), Q inside the discriminator's player, the Hungarian code accuracy, and a short
run in which Q learns to read the codes."""

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from PIL import Image

from conftest import SMALL_DCGAN, compose_config
from genlab import losses
from genlab.callbacks import CodeGrid
from genlab.data import MNIST5kDataModule
from genlab.metrics.clustering import ClusterAccuracy, best_mapping_accuracy
from genlab.models import InfoGAN
from genlab.nets import CodeHead

TINY = ["model=infogan", *SMALL_DCGAN, "model.code_head.hidden=8"]


def tiny_infogan(tmp_path: Path, *overrides: str) -> InfoGAN:
    torch.manual_seed(0)
    return instantiate(compose_config(tmp_path, [*TINY, *overrides]).model)


def generator_inputs(model: InfoGAN, call) -> torch.Tensor:
    """The z the generator received while ``call()`` ran."""
    seen = []
    handle = model.generator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    try:
        call()
    finally:
        handle.remove()
    (z,) = seen
    return z


# -- losses ---------------------------------------------------------------------------------------------------------
def test_categorical_code_loss_is_the_cross_entropy_of_q():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    codes = torch.tensor([0, 1])
    by_hand = (-math.log(math.e**2 / (math.e**2 + 2)) - math.log(math.e / (math.e + 2))) / 2
    assert losses.categorical_code_loss(logits, codes).item() == pytest.approx(by_hand, rel=1e-6)
    # Q that reads the code perfectly drives the loss to 0, so the bound log K - loss reaches log K
    perfect = losses.categorical_code_loss(torch.tensor([[50.0, 0.0, 0.0]]), torch.tensor([0]))
    assert perfect.item() == pytest.approx(0, abs=1e-6)


def test_gaussian_code_loss_is_the_factored_gaussian_nll():
    mean = torch.tensor([[0.0, 1.0], [0.5, -1.0]])
    log_std = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    codes = torch.tensor([[1.0, 1.0], [0.5, 1.0]])
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    first = (half_log_2pi + 0 + 0.5 * 1.0**2) + (half_log_2pi + math.log(2.0) + 0.0)  # sum over the two codes
    second = (half_log_2pi + 0.0) + (half_log_2pi + 0.5 * 2.0**2)
    assert losses.gaussian_code_loss(mean, log_std, codes).item() == pytest.approx((first + second) / 2, rel=1e-6)
    # a wider Gaussian costs less for a code Q gets wrong and more for one it gets right: not a squared error
    wrong, right = torch.tensor([[3.0]]), torch.tensor([[0.0]])
    narrow, wide = torch.zeros(1, 1), torch.full((1, 1), math.log(3.0))
    nll = lambda log_std, code: losses.gaussian_code_loss(torch.zeros(1, 1), log_std, code)  # noqa: E731
    assert nll(wide, wrong) < nll(narrow, wrong) and nll(wide, right) > nll(narrow, right)


def test_a_head_with_fixed_std_scores_continuous_codes_by_half_the_squared_error():
    """openai/InfoGAN's fix_std=True: Q predicts means only, every std is 1, and the NLL is 1/2 MSE + a constant
    (at most 1/6 nat per uniform code to gain, where a learnt std makes the gain unbounded)."""
    head = CodeHead(in_features=4, categories=3, continuous_codes=2, hidden=5, learn_std=False)
    assert head.net[-1].out_features == 3 + 2
    logits, mean, log_std = head(torch.randn(6, 4))
    assert logits.shape == (6, 3) and mean.shape == (6, 2) and torch.equal(log_std, torch.zeros(6, 2))
    codes = torch.rand(6, 2) * 2 - 1
    expected = 0.5 * (codes - mean).square().sum(1).mean() + math.log(2 * math.pi)  # two codes
    assert losses.gaussian_code_loss(mean, log_std, codes).item() == pytest.approx(expected.item(), rel=1e-6)
    assert CodeHead(in_features=4, categories=3, continuous_codes=2, hidden=5).net[-1].out_features == 3 + 2 * 2


# -- codes and sampling -----------------------------------------------------------------------------------------------
def test_the_preset_has_the_openai_mnist_settings(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=infogan"])
    assert (cfg.model.categories, cfg.model.continuous_codes, cfg.model.information_weight) == (10, 2, 1.0)
    assert cfg.model.code_head.hidden == 128 and not cfg.model.code_head.learn_std  # openai/InfoGAN's fix_std=True
    assert cfg.model.generator.latent_dim == 74  # 62 noise dims + 10 + 2
    optimizer = cfg.model.optimizer
    assert (optimizer.generator.lr, optimizer.discriminator.lr) == (1e-3, 2e-4)
    assert list(optimizer.generator.betas) == list(optimizer.discriminator.betas) == [0.5, 0.999]
    assert instantiate(cfg.model).noise_dim == 62


def test_sample_condition_fixes_the_categorical_code_and_otherwise_draws_all_codes(tmp_path: Path):
    model = tiny_infogan(tmp_path)
    condition = torch.tensor([3, 3, 0, 9])
    z = generator_inputs(model, lambda: model.sample(4, condition=condition, generator=torch.Generator().manual_seed(1)))
    one_hot = z[:, 62:72]
    assert torch.equal(one_hot, torch.nn.functional.one_hot(condition, 10).float())
    z = generator_inputs(model, lambda: model.sample(2000, generator=torch.Generator().manual_seed(2)))
    drawn = z[:, 62:72].argmax(1)
    assert torch.equal(z[:, 62:72].sum(1), torch.ones(2000))
    assert (torch.bincount(drawn, minlength=10).float() / 2000 - 0.1).abs().max() < 0.03  # uniform categorical
    continuous = z[:, 72:]
    assert continuous.min() >= -1 and continuous.max() <= 1 and continuous.abs().mean() == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize(
    "condition", [torch.tensor([1, 10]), torch.tensor([-1, 2]), torch.tensor([1.0, 2.0]), torch.tensor([1, 2, 3])]
)
def test_a_bad_code_condition_names_the_allowed_values(tmp_path: Path, condition: torch.Tensor):
    model = tiny_infogan(tmp_path)
    with pytest.raises(ValueError, match=r"fixes the categorical code: pass 2 integers in 0\.\.9"):
        model.sample(2, condition=condition)


def test_training_ignores_the_data_labels(tmp_path: Path):
    # the code is unsupervised: the D and G steps pass the batch's labels to draw_latent, which must not use them
    model = tiny_infogan(tmp_path)
    latent = model.draw_latent(500, torch.zeros(500, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    assert len(latent.categorical.unique()) == 10


def test_the_code_grid_has_the_paper_layout(tmp_path: Path):
    """Rows = categorical code value, columns = continuous code i swept from -2 to 2, the noise and the other code
    fixed; one grid per continuous code, written as a PNG of 10 rows by ``steps`` columns."""
    model = tiny_infogan(tmp_path)
    values = torch.linspace(-2, 2, 5)
    for index in (0, 1):
        z = generator_inputs(model, lambda: model.sweep_code(index, values, generator=torch.Generator().manual_seed(0)))
        grid = z.view(10, 5, 74)
        assert torch.equal(grid[:, :, :62], grid[:1, :1, :62].expand(10, 5, 62))  # one noise vector
        assert torch.equal(grid[:, :, 62:72].argmax(2), torch.arange(10)[:, None].expand(10, 5))  # row = code value
        assert torch.equal(grid[:, :, 72 + index], values[None, :].expand(10, 5))  # column = swept value
        assert torch.equal(grid[:, :, 72 + 1 - index], torch.zeros(10, 5))  # the other continuous code at 0
    with pytest.raises(ValueError, match="codes 0..1"):
        model.sweep_code(2, values)

    datamodule = MNIST5kDataModule(batch_size=16)
    callback = CodeGrid(tmp_path / "codes", every_n_steps=None, steps=5)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, accelerator="cpu", logger=False, callbacks=[callback],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=datamodule)
    assert [p.name for p in callback.last_paths] == ["continuous_0_step_000002.png", "continuous_1_step_000002.png"]
    width, height = Image.open(callback.last_paths[0]).size
    assert (width, height) == (5 * 34 + 2, 10 * 34 + 2)  # 32px images, 2px padding: 5 columns, 10 rows


# -- Q is part of the discriminator's player ---------------------------------------------------------------------------
def test_q_trains_with_the_discriminator_and_the_information_term_reaches_both_players(tmp_path: Path):
    model = tiny_infogan(tmp_path)
    d_optimizer, g_optimizer = model.configure_optimizers()
    d_params = {id(p) for group in d_optimizer.param_groups for p in group["params"]}
    assert {id(p) for p in model.discriminator.code_head.parameters()} <= d_params
    assert not d_params & {id(p) for p in model.generator.parameters()}

    latent = model.draw_latent(8)
    information, logs = model.information_loss(model.generate(latent), latent)
    information.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.discriminator.code_head.parameters())
    assert next(model.generator.parameters()).grad.abs().sum() > 0  # G is pushed to make its codes readable
    assert set(logs) == {"info/categorical_ce", "info/continuous_nll"}


def test_generator_latent_dim_must_hold_the_codes(tmp_path: Path):
    with pytest.raises(InstantiationException) as err:
        tiny_infogan(tmp_path, "model.generator.latent_dim=12")
    assert isinstance(err.value.__cause__, ValueError)
    assert "model.generator.latent_dim=12 must hold the noise and the codes" in str(err.value.__cause__)


# -- the metric -------------------------------------------------------------------------------------------------------
def test_cluster_accuracy_finds_a_known_permutation_and_is_one_to_one():
    labels = torch.arange(10).repeat(30)
    permutation = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    metric = ClusterAccuracy(10, 10)
    metric.update(permutation[labels], labels)
    assert metric.compute().item() == 1.0
    clusters = permutation[labels].clone()
    clusters[:30] = permutation[(labels[:30] + 1) % 10]  # 30 of 300 images in a wrong cluster
    metric.reset()
    metric.update(clusters[:150], labels[:150])  # accumulates over updates
    metric.update(clusters[150:], labels[150:])
    assert metric.compute().item() == pytest.approx(0.9)
    # two clusters that both hold mostly class 0: a one-to-one mapping may give class 0 to only one of them
    counts = torch.tensor([[5, 0], [4, 3]])
    assert best_mapping_accuracy(counts) == pytest.approx(8 / 12)  # many-to-one would score 9 / 12


# -- training ---------------------------------------------------------------------------------------------------------
def test_a_short_run_teaches_q_to_read_the_codes_of_fakes(tmp_path: Path):
    """60 batches on MNIST-5k with the preset's settings (nets narrowed to 16 maps): Q's cross-entropy on the
    categorical code of fresh fakes falls from log 10 (it reads nothing) well towards 0."""
    model = tiny_infogan(tmp_path, "model.generator.width=16", "model.discriminator.width=16", "model.code_head.hidden=128")
    latent = model.draw_latent(256, generator=torch.Generator().manual_seed(0))

    def categorical_ce() -> float:  # in training mode, as the information term sees it
        with torch.no_grad():
            logits, _, _ = model.discriminator.codes(model.generate(latent))
        return losses.categorical_code_loss(logits, latent.categorical).item()

    before = categorical_ce()
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=60, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=MNIST5kDataModule(batch_size=64))
    after = categorical_ce()
    assert before > 0.95 * math.log(10) and after < 0.8 * math.log(10), (before, after)
