"""ProGAN: the fade-in of G, D and the real images against the formula, the paper's layers against hand computations,
the growth schedule, and short real training runs (growing 4 -> 8 -> 16, a resumed run continuing the schedule)."""

import csv
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from PIL import Image

from conftest import FAST, compose_config
from genlab.checkpoints import load_checkpoint
from genlab.losses import wasserstein_drift_discriminator_loss
from genlab.models.progan import GrowthStage, growth_stage, real_images_at
from genlab.nets.progan import (
    EqualizedConv2d,
    EqualizedLinear,
    ProGANDiscriminator,
    ProGANGenerator,
    minibatch_stddev,
    pixel_norm,
)
from genlab.run import train

ALPHAS = [0.0, 0.5, 1.0]
# 16 px digits in batches of 16, phases of 2 batches: 4x4 (2), fade 8 (2), 8 (2), fade 16 (2), then 16 px
GROWING = [*FAST, "model=progan", "model.generator.width=8", "data.image_size=16", "data.batch_size=16", "model.fade_images=32",
           "model.stabilise_images=32", "++trainer.limit_train_batches=12", "callbacks.model_checkpoint.every_n_batches=3"]


def upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def nets(image_size: int = 16) -> tuple[ProGANGenerator, ProGANDiscriminator]:
    torch.manual_seed(0)
    return ProGANGenerator(8, 1, image_size, width=8), ProGANDiscriminator(1, image_size, width=8)


def logged_rows(run: Path) -> list[dict[str, float]]:
    with open(run / "csv" / "metrics.csv") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f) if row.get("progan/alpha")]


# -- fade-in ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", ALPHAS)
def test_the_generator_fades_the_new_block_in_as_the_formula_says(alpha: float):
    generator, _ = nets()
    z = torch.randn(4, 8)
    old_rgb = generator(z, resolution=8)  # to_rgb of the 8x8 maps
    new_rgb = generator(z, resolution=16, alpha=1.0)  # to_rgb of the new 16x16 block
    expected = (1 - alpha) * upsample(old_rgb) + alpha * new_rgb
    assert torch.allclose(generator(z, resolution=16, alpha=alpha), expected, atol=1e-6)
    assert generator(z).shape == (4, 1, 16, 16) and old_rgb.shape == (4, 1, 8, 8)


def test_at_alpha_one_the_old_output_layer_no_longer_matters():
    generator, discriminator = nets()
    z, x = torch.randn(4, 8), torch.randn(4, 1, 16, 16)
    before = generator(z, resolution=16, alpha=1.0), discriminator(x, alpha=1.0)
    with torch.no_grad():
        generator.to_rgb[1].weight.add_(1.0)  # the 8x8 output layer
        discriminator.from_rgb[1].weight.add_(1.0)  # the 8x8 input layer
    assert torch.equal(generator(z, resolution=16, alpha=1.0), before[0])
    assert torch.equal(discriminator(x, alpha=1.0), before[1])
    assert not torch.allclose(generator(z, resolution=16, alpha=0.5), before[0])


@pytest.mark.parametrize("alpha", ALPHAS)
def test_the_discriminator_fades_the_new_block_in_as_the_mirror_image(alpha: float):
    _, discriminator = nets()
    x = torch.randn(4, 1, 16, 16)
    act = lambda h: F.leaky_relu(h, 0.2)  # noqa: E731
    old = act(discriminator.from_rgb[1](F.avg_pool2d(x, 2)))  # from_rgb of the 2x-downsampled images
    new = act(discriminator.from_rgb[2](x))
    for conv in discriminator.blocks[1]:  # the new 16x16 block, down to 8x8
        new = act(conv(new))
    new = F.avg_pool2d(new, 2)
    assert torch.allclose(discriminator.grown_in(x, alpha), (1 - alpha) * old + alpha * new, atol=1e-6)
    if alpha == 0:  # the whole discriminator is then the 8x8 one on the downsampled images
        assert torch.allclose(discriminator(x, alpha=0.0), discriminator(F.avg_pool2d(x, 2)), atol=1e-6)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_real_images_are_downsampled_and_blended_like_the_generator_output(alpha: float):
    images = torch.randn(3, 1, 32, 32)
    x8 = F.avg_pool2d(images, 4)
    expected = (1 - alpha) * upsample(F.avg_pool2d(x8, 2)) + alpha * x8
    assert torch.allclose(real_images_at(images, 8, alpha), expected, atol=1e-6)
    assert torch.equal(real_images_at(images, 32, 1.0), images)


# -- the paper's layers -----------------------------------------------------------------------------------------
def test_equalised_layers_scale_unit_normal_weights_by_he_constant_at_run_time():
    torch.manual_seed(0)
    conv, dense = EqualizedConv2d(8, 4, 3), EqualizedLinear(32, 5, gain=1.0)
    assert conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(8 * 3 * 3)) and dense.scale == pytest.approx(1 / math.sqrt(32))
    x = torch.randn(2, 8, 6, 6)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1), atol=1e-6)
    assert torch.allclose(dense(x.flatten(1)[:, :32]), x.flatten(1)[:, :32] @ (dense.weight * dense.scale).T, atol=1e-6)
    big = EqualizedConv2d(256, 256, 3)  # stored weights are N(0, 1), biases 0, whatever the fan-in
    assert abs(big.weight.std().item() - 1) < 0.01 and not big.bias.any()


def test_equalised_learning_rate_moves_every_layer_by_the_same_fraction_of_its_weight_scale():
    # Sec. 4.1: with the He scale outside the parameter, Adam's first step (size lr per stored weight) changes each
    # layer's effective weights by the same fraction of their spread, small fan-in or large
    torch.manual_seed(0)
    for fan_in_channels in (2, 128):
        conv = EqualizedConv2d(fan_in_channels, 8, 3)
        before = conv.weight.detach() * conv.scale
        optimizer = torch.optim.Adam(conv.parameters(), lr=1e-3)
        conv(torch.randn(4, fan_in_channels, 5, 5)).square().mean().backward()
        optimizer.step()
        change = (conv.weight.detach() * conv.scale - before).abs().mean() / before.std()
        assert change.item() == pytest.approx(1e-3, rel=0.05), fan_in_channels


def test_pixel_norm_divides_each_pixel_by_the_rms_over_its_feature_maps():
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0]]).T.reshape(1, 2, 1, 2)  # pixel 0: (3, 4), pixel 1: (1, 0)
    out = pixel_norm(x)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([3.0, 4.0]) / math.sqrt(12.5))
    assert torch.allclose(out[0, :, 0, 1], torch.tensor([1.0, 0.0]) / math.sqrt(0.5))
    assert torch.allclose(pixel_norm(torch.randn(3, 16, 4, 4)).square().mean(1), torch.ones(3, 4, 4), atol=1e-5)


def test_minibatch_stddev_appends_the_mean_group_standard_deviation_as_a_feature_map():
    # groups of 2 are strided as in the official code: samples {0, 2} and {1, 3}
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 4.0], [6.0, 0.0]]).view(4, 2, 1, 1)
    out = minibatch_stddev(x, group_size=2)
    # group {0, 2}: population stds 1 and 2 -> 1.5; group {1, 3}: 2 and 0 (sqrt(1e-8)) -> 1.00005
    assert out.shape == (4, 3, 1, 1) and torch.equal(out[:, :2], x)
    assert torch.allclose(out[:, 2].flatten(), torch.tensor([1.5, 1.00005, 1.5, 1.00005]), atol=1e-6)
    wide = minibatch_stddev(torch.randn(8, 5, 4, 4), group_size=4)
    assert wide.shape == (8, 6, 4, 4) and (wide[:, 5] == wide[:, 5, :1, :1]).all()  # constant over each map
    with pytest.raises(ValueError, match=r"batch of 6.*data\.batch_size to a multiple of 4"):
        minibatch_stddev(torch.randn(6, 5, 4, 4), group_size=4)


def test_the_drift_term_adds_epsilon_times_the_mean_squared_real_score():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -0.5])
    # E[D(G(z))] - E[D(x)] + 0.001 E[D(x)^2] = 0 - 2 + 0.001 * 5
    assert wasserstein_drift_discriminator_loss(real, fake).item() == pytest.approx(-2 + 0.005)


# -- schedule and bad input -------------------------------------------------------------------------------------
def test_the_schedule_is_a_function_of_images_seen():
    stage = lambda seen: growth_stage(seen, image_size=32, fade_images=100, stabilise_images=200)  # noqa: E731
    assert stage(0) == stage(199) == GrowthStage(0, 4, 1.0)
    assert stage(200) == GrowthStage(1, 8, 0.0) and stage(250) == GrowthStage(1, 8, 0.5)
    assert stage(300) == stage(499) == GrowthStage(2, 8, 1.0)
    assert stage(500) == GrowthStage(3, 16, 0.0) and stage(875) == GrowthStage(5, 32, 0.75)
    assert stage(900) == stage(10**9) == GrowthStage(6, 32, 1.0)  # the last resolution stays


@pytest.mark.parametrize("size", [28, 2, 48])
def test_a_resolution_that_is_not_a_power_of_two_is_refused_with_the_key_to_fix(tmp_path: Path, size: int):
    message = r"data\.image_size must be a power of two >= 4.*got " + str(size)
    with pytest.raises(ValueError, match=message):
        ProGANGenerator(8, 1, size)
    with pytest.raises(InstantiationException, match=message):
        instantiate(compose_config(tmp_path, ["model=progan", f"data.image_size={size}"]).model)


# -- the preset and real training runs --------------------------------------------------------------------------
def test_the_preset_has_the_paper_settings_and_grows_to_32_px_within_the_default_run(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=progan"])
    for opt in cfg.model.optimizer.values():
        assert (opt.lr, list(opt.betas), opt.eps) == (1e-3, [0.0, 0.99], 1e-8)
    assert cfg.model.penalties.gradient_penalty.weight == 10.0 and cfg.model.loss.discriminator.drift == 0.001
    assert cfg.model.n_critic == 1
    # the demo schedule: 7 phases of 6400 images = the default 10 epochs of 70 batches of 64, the last 100 at 32 px
    images = cfg.trainer.max_epochs * (4500 // cfg.data.batch_size) * cfg.data.batch_size
    stage = lambda seen: growth_stage(seen, cfg.data.image_size, cfg.model.fade_images, cfg.model.stabilise_images)  # noqa: E731
    assert images == 44_800 and stage(images - 6400) == GrowthStage(6, 32, 1.0) and stage(images - 6401).phase == 5


def test_sampling_shows_the_current_resolution_enlarged_to_the_image_size(tmp_path: Path):
    model = instantiate(compose_config(tmp_path, ["model=progan"]).model)
    model.images_seen.fill_(6400 + 3200)  # half way through the fade-in of 8x8
    assert model.stage == GrowthStage(1, 8, 0.5)
    seed = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    samples = model.sample(5, generator=seed())
    z = model.draw_latent(5, generator=seed()).z
    with torch.no_grad():
        current = model.generator.eval()(z, resolution=8, alpha=0.5)
    assert samples.shape == (5, 1, 32, 32)
    assert torch.equal(samples, F.interpolate(current, size=32, mode="nearest").clamp(-1, 1))
    model.images_seen.fill_(10**7)  # grown: the full-size generator
    with torch.no_grad():
        assert torch.equal(model.sample(5, generator=seed()), model.generator(z).clamp(-1, 1))


def test_training_grows_from_4_to_8_to_16_px_and_logs_alpha_and_resolution(tmp_path: Path):
    cfg = compose_config(tmp_path, [*GROWING, "logger=csv"])
    train(cfg)
    run = tmp_path / "run"
    rows = logged_rows(run)
    assert [row["progan/resolution"] for row in rows] == [4, 4, 8, 8, 8, 8, 16, 16, 16, 16, 16, 16]
    assert [row["progan/alpha"] for row in rows] == [1, 1, 0, 0.5, 1, 1, 0, 0.5, 1, 1, 1, 1]
    assert all(math.isfinite(row["loss/d"]) and math.isfinite(row["loss/g"]) for row in rows)
    # every grid has the full size, so the GIF's frames line up
    sizes = {Image.open(p).size for p in (run / "samples").glob("step_*.png")}
    assert len(sizes) == 1 and (run / "samples" / "progress.gif").exists()
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert int(checkpoint["state_dict"]["images_seen"]) == 12 * 16 and int(checkpoint["state_dict"]["phase"]) == 4
    # Adam's state was reset when the last phase began (batch 8): 4 steps since, and none for the 8x8 output layer
    model = instantiate(cfg.model)
    generator_state = checkpoint["optimizer_states"][1]["state"]
    names = [name for name, _ in model.generator.named_parameters()]
    assert {int(s["step"]) for s in generator_state.values()} == {4}
    assert names.index("to_rgb.1.weight") not in generator_state and names.index("to_rgb.2.weight") in generator_state


def test_a_resumed_run_continues_the_schedule_where_it_stopped(tmp_path: Path):
    quiet = ["logger=none", "callbacks.sample_grid.every_n_steps=null"]
    train(compose_config(tmp_path / "full", [*GROWING, *quiet]))
    full = tmp_path / "full" / "run" / "checkpoints"
    middle = load_checkpoint(full / "batch_0000003.ckpt")  # stopped half way through the fade-in of 8x8
    model = instantiate(compose_config(tmp_path, GROWING).model)
    model.load_state_dict(middle["state_dict"])
    assert model.stage == GrowthStage(1, 8, 0.5)
    train(compose_config(tmp_path / "resumed", [*GROWING, *quiet, f"ckpt_path={full / 'batch_0000003.ckpt'}"]))
    resumed = load_checkpoint(tmp_path / "resumed" / "run" / "checkpoints" / "last.ckpt")
    expected = load_checkpoint(full / "last.ckpt")
    for key, value in expected["state_dict"].items():  # weights, schedule and phase: bit for bit
        assert torch.equal(resumed["state_dict"][key], value), key
    assert int(resumed["state_dict"]["images_seen"]) == 12 * 16
