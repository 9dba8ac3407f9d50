"""SRResNet / SRGAN (Ledig et al. 2017): nets at scales 2 and 4, the bicubic LR data, PSNR/SSIM on Y (BT.601), the
VGG content loss's offline weights, the two-phase recipe, and a short SRResNet run that beats bicubic."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from conftest import compose_config
from genlab.checkpoints import load_checkpoint
from genlab.data.super_resolution import HighLowPairs, SuperResolutionDataModule, bicubic_downsample
from genlab.metrics.super_resolution import PeakSignalToNoiseRatio, StructuralSimilarity, luminance
from genlab.models.srgan import VGGContentLoss, generator_state
from genlab.nets import SRGANDiscriminator, SRResNet
from genlab.nets.vgg import VGG19_WEIGHTS_FILE, VGG19_WEIGHTS_URL, VGGFeatures, VGGWeightsUnavailable
from genlab.run import train

TINY = ["model.generator.width=8", "model.generator.blocks=1"]
TRAINER = ["trainer.max_epochs=1", "trainer.accelerator=cpu", "print_config=false", "logger=csv"]
QUIET = [*TRAINER, "metrics=none"]


@pytest.fixture(scope="module")
def mnist_sr():
    """The demo data (data=mnist5k_sr) at a scale factor; the digits are read once (about 3 s)."""
    from genlab.data import MNIST5kDataModule

    digits = MNIST5kDataModule()
    digits.setup("fit")

    def make(scale_factor: int = 4) -> SuperResolutionDataModule:
        dm = SuperResolutionDataModule(digits, scale_factor, channels=1, image_size=32, num_classes=10)
        dm.setup("fit")
        return dm

    return make


# -- nets ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("channels", [1, 3])
def test_srresnet_upsamples_by_its_scale_factor(scale: int, channels: int):
    net = SRResNet(channels, channels, scale_factor=scale, width=8, blocks=2)
    assert net(torch.rand(2, channels, 8, 6) * 2 - 1).shape == (2, channels, 8 * scale, 6 * scale)
    assert sum(isinstance(m, torch.nn.PixelShuffle) for m in net.modules()) == {2: 1, 4: 2}[scale]


def test_srresnet_refuses_scales_that_are_not_powers_of_two():
    with pytest.raises(ValueError, match="power of two.*data.scale_factor"):
        SRResNet(1, 1, scale_factor=3)


@pytest.mark.parametrize("size", [32, 96])
def test_discriminator_scores_each_image_and_halves_four_times(size: int):
    net = SRGANDiscriminator(3, size, width=8, dense=16)
    assert net(torch.randn(5, 3, size, size)).shape == (5,)
    assert net.features(torch.randn(5, 3, size, size)).shape == (5, 16)
    with pytest.raises(ValueError, match="divisible by 16"):
        SRGANDiscriminator(3, 40)


# -- data ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [2, 4])
def test_batches_pair_hr_images_with_their_bicubic_downsampling(mnist_sr, scale: int):
    dm = mnist_sr(scale)
    batch = next(iter(dm.train_dataloader()))
    n = dm.batch_size
    assert batch.images.shape == (n, 1, 32, 32) and batch.source.shape == (n, 1, 32 // scale, 32 // scale)
    assert torch.equal(batch.source, bicubic_downsample(batch.images, scale))
    assert batch.labels.shape == (n,)


def test_the_downsampling_is_pils_bicubic_resize_on_8_bit_images():
    # PIL's BICUBIC (a = -0.5, antialiased) is MATLAB imresize's kernel, the paper's degradation
    pixels = torch.randint(256, (1, 1, 32, 32), generator=torch.Generator().manual_seed(0)).float()
    pil = np.asarray(Image.fromarray(pixels[0, 0].numpy().astype(np.uint8)).resize((8, 8), Image.Resampling.BICUBIC))
    ours = ((bicubic_downsample(pixels / 127.5 - 1, 4) + 1) * 127.5)[0, 0].numpy()
    assert np.allclose(ours, ours.round()) and np.abs(ours - pil).max() <= 1  # 8-bit, within one level of rounding


def test_a_scale_factor_that_does_not_divide_the_image_size_is_refused(mnist_sr):
    with pytest.raises(ValueError, match=r"data.scale_factor=3 .* divides data.image_size=32.*2, 4, 8"):
        mnist_sr(3)


def test_held_out_conditions_map_back_to_their_hr_images(mnist_sr):
    dm = mnist_sr(4)
    sources = dm.conditions(6, "source", seed=1)
    assert torch.equal(sources, dm.conditions(6, "source", seed=1)) and sources.shape == (6, 1, 8, 8)
    hr = dm.high_resolution_of(sources)
    assert torch.equal(bicubic_downsample(hr, 4), sources)
    assert any(torch.equal(hr[0], dm.val_set[i][0]) for i in range(len(dm.val_set)))  # held-out images
    with pytest.raises(KeyError, match="not in the held-out split"):
        dm.high_resolution_of(torch.ones(1, 1, 8, 8))


def test_a_folder_of_hr_images_gives_random_training_crops_and_central_held_out_crops(tmp_path: Path):
    folder = tmp_path / "DIV2K_train_HR"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    data = ["data=sr_folder", f"data.high_resolution.root={folder}", "data.image_size=16", "data.high_resolution.image_size=24",
            "data.batch_size=2", "data.num_workers=0", "data.high_resolution.val_fraction=0.34"]
    dm = instantiate(compose_config(tmp_path, ["model=srresnet", *data]).data)
    dm.setup("fit")
    loader = dm.train_dataloader()
    batch = next(iter(loader))
    assert batch.images.shape == (2, 3, 16, 16) and batch.source.shape == (2, 3, 4, 4) and batch.labels is None
    assert torch.equal(batch.source, bicubic_downsample(batch.images, 4))
    full = dm.high_resolution.val_set[0][0]  # 24 x 24 (short side resized, central square)
    assert torch.equal(dm.val_set[0][0], full[:, 4:20, 4:20])  # held out: the central crop, every time
    assert isinstance(loader.dataset, HighLowPairs) and loader.dataset.random_crop  # training: random crops
    random_view = HighLowPairs(dm.high_resolution.val_set, 4, 16, random_crop=True)
    assert len({tuple(random_view[0][0].flatten().tolist()) for _ in range(8)}) > 1
    train(compose_config(tmp_path, ["model=srresnet", *data, *TINY, *QUIET, "++trainer.limit_train_batches=1"]))


# -- metrics ---------------------------------------------------------------------------------------------------------
def test_y_channel_is_itu_r_bt601_of_the_8_bit_pixels():
    rgb = torch.randint(256, (2, 3, 4, 5), generator=torch.Generator().manual_seed(0)).double()
    r, g, b = (rgb[:, i : i + 1] / 255 for i in range(3))
    expected = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    assert torch.allclose(luminance(rgb / 127.5 - 1), expected, atol=1e-9)
    corners = torch.tensor([[1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]).view(3, 3, 1, 1)
    assert torch.allclose(luminance(corners).flatten(), torch.tensor([16 + 65.481, 235.0, 16.0], dtype=torch.float64))
    grey = torch.linspace(-1, 1, 256).view(1, 1, 16, 16)
    assert torch.equal(luminance(grey).flatten(), torch.arange(256, dtype=torch.float64))  # grayscale: Y is the image


def test_psnr_and_ssim_score_samples_and_the_bicubic_baseline_against_the_hr_images(mnist_sr):
    dm = mnist_sr(4)
    sources = dm.conditions(8, "source", seed=0)
    hr = dm.high_resolution_of(sources)
    psnr, ssim = PeakSignalToNoiseRatio(crop_border=4), StructuralSimilarity(crop_border=4)
    for metric in (psnr, ssim):
        metric.prepare(dm)
        metric.update(hr, sources)  # perfect super-resolution
    assert torch.isinf(psnr.compute()["psnr"]) and ssim.compute()["ssim"] == pytest.approx(1.0)
    baseline = psnr.compute()["bicubic"]
    assert 10 < baseline < 30 and 0 < ssim.compute()["bicubic"] < 1

    off = (hr + 10 / 127.5).clamp(max=1)  # +10 grey levels where they fit
    error = (luminance(off) - luminance(hr))[..., 4:-4, 4:-4].square().mean(dim=(1, 2, 3))
    psnr.reset()
    psnr.update(off, sources)
    assert psnr.compute()["psnr"].item() == pytest.approx((10 * torch.log10(255**2 / error)).mean().item(), rel=1e-5)
    assert psnr.compute()["bicubic"] == baseline


def test_psnr_refuses_data_without_hr_images():
    from genlab.data import MNIST5kDataModule
    from genlab.metrics import UnsupportedDataError

    with pytest.raises(UnsupportedDataError, match="data=mnist5k_sr"):
        PeakSignalToNoiseRatio().prepare(MNIST5kDataModule())


# -- VGG content loss ------------------------------------------------------------------------------------------------
def test_missing_vgg_weights_name_the_file_where_to_get_it_and_the_key(tmp_path: Path):
    with pytest.raises(FileNotFoundError) as missing:
        VGGContentLoss(weights=tmp_path / VGG19_WEIGHTS_FILE)
    for part in (VGG19_WEIGHTS_FILE, VGG19_WEIGHTS_URL, "model.content_loss.weights", "model/content_loss=mse"):
        assert part in str(missing.value)
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(VGGWeightsUnavailable, match=f"(?s){other} is not torchvision's VGG19.*{VGG19_WEIGHTS_FILE}"):
        VGGContentLoss(weights=other)


@pytest.mark.slow
def test_vgg54_loss_reads_torchvisions_file_and_stays_out_of_the_model(tmp_path: Path):
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)  # random weights, saved in torchvision's layout (its file holds features.* and classifier.*)
    weights = tmp_path / VGG19_WEIGHTS_FILE
    torch.save({f"features.{k}": v for k, v in make_layers(cfgs["E"]).state_dict().items()}, weights)
    loss = VGGContentLoss(weights=weights)
    assert len(loss.features.features) == 36 and isinstance(loss.features.features[-1], torch.nn.ReLU)  # relu5_4
    hr = torch.rand(2, 1, 32, 32) * 2 - 1
    sr = (hr + 0.3 * torch.randn_like(hr)).requires_grad_(True)
    assert loss(hr, hr) == 0
    value = loss(sr, hr)
    value.backward()
    assert value > 0 and sr.grad.abs().sum() > 0 and all(p.grad is None for p in loss.features.parameters())

    cfg = compose_config(tmp_path, ["model=srresnet", "data=mnist5k_sr", "model/content_loss=vgg54", f"model.content_loss.weights={weights}"])
    model = instantiate(cfg.model)
    assert isinstance(model.content_loss, VGGContentLoss)
    assert not any(k.startswith("content_loss") for k in model.state_dict())  # 80 MB of frozen VGG: not in checkpoints
    assert isinstance(VGGFeatures(weights, layer="22").features[-1], torch.nn.ReLU)


# -- training --------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_short_srresnet_run_beats_bicubic_and_srgan_starts_from_it(tmp_path: Path):
    # phase 1 as a user runs it, with the preset's metrics (PSNR/SSIM and the digit classifier's); small net, higher lr
    small = ["data=mnist5k_sr", "model.generator.width=16", "model.generator.blocks=2"]
    cfg = compose_config(
        tmp_path / "srresnet",
        ["model=srresnet", *small, "model.optimizer.generator.lr=2e-3", "data.batch_size=32", *TRAINER,
         "++trainer.limit_train_batches=100", "callbacks.sample_metrics.num_samples=300", "callbacks.sample_metrics.batch_size=150"],
    )
    metrics = train(cfg)
    assert metrics["metrics/psnr"] > metrics["metrics/psnr_bicubic"] + 1.0, metrics
    assert 0 < metrics["metrics/ssim_bicubic"] < 1 and 0 < metrics["metrics/ssim"] < 1
    grid = np.asarray(Image.open(sorted((tmp_path / "srresnet" / "run" / "samples").glob("*.png"))[-1]))
    assert grid.shape[0] > 3 * 32  # bicubic | SR | HR rows

    # phase 2: SRGAN from that checkpoint. Read when fitting starts, not when built (eval.py never needs the file);
    # zero learning rates keep the generator's starting weights visible in the run's checkpoint. ~demo: the preset's
    # two-run recipe, without the demo's pretraining phase.
    ckpt = tmp_path / "srresnet" / "run" / "checkpoints" / "last.ckpt"
    srgan = compose_config(
        tmp_path / "srgan",
        ["model=srgan", "~demo", *small, "model.discriminator.width=4", f"model.generator_weights={ckpt}", "model.optimizer.generator.lr=0",
         *QUIET, "++trainer.limit_train_batches=2", "trainer.log_every_n_steps=1"],  # losses reach train()'s metrics on written batches
    )
    model = instantiate(srgan.model)
    pretrained = generator_state(ckpt, model.generator)
    assert not torch.equal(model.generator.tail.weight, pretrained["tail.weight"])
    result = train(srgan)
    assert np.isfinite(result["loss/adversarial"]) and np.isfinite(result["loss/content"])
    after = generator_state(tmp_path / "srgan" / "run" / "checkpoints" / "last.ckpt", model.generator)
    moving = {k for k in pretrained if "running_" in k or "num_batches" in k}  # BatchNorm statistics (train mode)
    assert moving and all(torch.equal(after[k], v) for k, v in pretrained.items() if k not in moving)
    with pytest.raises(ValueError, match="same model.generator settings"):
        generator_state(ckpt, SRResNet(1, 1, 4, width=8, blocks=2))


def test_pretraining_batches_train_the_generator_alone_before_the_adversarial_phase(tmp_path: Path):
    # the demo's one-run recipe: 3 content-only batches (SRResNet), then SRGAN
    cfg = compose_config(
        tmp_path,
        ["model=srgan", "data=mnist5k_sr", *TINY, "model.discriminator.width=4", "model.pretraining_batches=3",
         *QUIET, "++trainer.limit_train_batches=5", "trainer.log_every_n_steps=1"],
    )
    train(cfg)
    with open(tmp_path / "run" / "csv" / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row.get("loss/content")]
    assert len(rows) == 5
    assert [bool(row["loss/adversarial"]) for row in rows] == [False] * 3 + [True] * 2
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    adam_steps = [int(next(iter(opt["state"].values()))["step"]) for opt in state["optimizer_states"]]
    assert adam_steps == [2, 5]  # the discriminator's Adam steps on adversarial batches, the generator's on all


def test_sr_models_on_data_without_lr_images_say_which_data_to_pick(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=srresnet", "data=mnist5k", *TINY, *QUIET, "++trainer.limit_train_batches=1"])
    with pytest.raises(ValueError, match="data=mnist5k_sr"):
        train(cfg)


def test_sampling_translates_the_lr_condition(mnist_sr, tmp_path: Path):
    model = instantiate(compose_config(tmp_path, ["model=srresnet", "data=mnist5k_sr", *TINY]).model)
    sources = mnist_sr(4).conditions(3, "source", seed=0)
    samples = model.sample(3, condition=sources)
    assert samples.shape == (3, 1, 32, 32) and samples.min() >= -1 and samples.max() <= 1
    rows = model.translation_rows(sources)
    assert list(rows) == ["source", "super_resolved"] and rows["source"].shape == (3, 1, 32, 32)  # bicubic, output size
    with pytest.raises(ValueError, match="condition=source"):
        model.sample(3)
