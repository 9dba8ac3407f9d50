"""pix2pix: the U-Net generator, the scheme's losses against a hand computation, its refusal of unpaired data, the
translation grid, and a short run on the embedded mnist_edges2digits that gets measurably closer to the ground truth."""

import copy
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from PIL import Image

from conftest import compose_config
from genlab.callbacks import SampleGrid
from genlab.evaluation import prepare_metrics, score_samples
from genlab.losses import binary_cross_entropy_discriminator_loss, non_saturating_generator_loss
from genlab.metrics.translation import GroundTruthL1, GroundTruthPSNR, GroundTruthSSIM
from genlab.models.pix2pix import Pix2Pix, patch_layers
from genlab.nets import UnetGenerator
from genlab.nets.patchgan import PatchGANDiscriminator, receptive_field
from genlab.run import train

TINY = ["model.generator.width=8", "model.discriminator.width=8"]
RUN = ["trainer.accelerator=cpu", "trainer.max_epochs=1", "print_config=false", "logger=none",
       "++trainer.enable_model_summary=false", "callbacks.sample_grid.every_n_steps=null",
       "callbacks.sample_grid.num_samples=8"]


# -- the U-Net -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size,levels", [(32, 5), (64, 6)])
def test_unet_maps_sources_to_targets_of_the_same_size_through_log2_levels(size: int, levels: int):
    net = UnetGenerator(in_channels=1, out_channels=3, image_size=size, width=8)
    out = net(torch.randn(2, 1, size, size))
    assert out.shape == (2, 3, size, size) and out.abs().max() <= 1  # Tanh out
    assert net.num_downs == levels
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == levels and convs[-1].out_channels == 8 * 8  # down to 1x1 at 8x the width
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in net.modules()) == 1  # below 256 px: one block


def test_unet_skip_connections_carry_the_source_past_the_bottleneck():
    torch.manual_seed(0)
    net = UnetGenerator(1, 1, 32, width=8, dropout=0).eval()
    x = torch.randn(1, 1, 32, 32)
    y = torch.zeros(1, 1, 32, 32, requires_grad=True)
    net(x + y)[0, 0, 3, 3].backward()
    # an output pixel depends most on its own input neighbourhood (the outermost skip), not evenly on the image
    grad = y.grad[0, 0].abs()
    assert grad[:8, :8].sum() > 3 * grad[16:, 16:].sum()


def test_unet_256_is_the_official_unet_256():
    net = UnetGenerator(3, 3, 256)  # ngf 64, batch norm, dropout in the 3 8x-wide blocks next to the bottleneck
    assert net.num_downs == 8  # netG=unet_256
    assert sum(p.numel() for p in net.parameters()) == 54_413_955  # the official "Total number of parameters : 54.414 M"
    assert sum(isinstance(m, torch.nn.Dropout) for m in net.modules()) == 3


def test_unet_refuses_sizes_it_cannot_halve_to_one_pixel():
    with pytest.raises(ValueError, match="power of 2"):
        UnetGenerator(1, 1, 28)
    with pytest.raises(ValueError, match=r"expects \(N, 1, 32, 32\)"):
        UnetGenerator(1, 1, 32, width=8)(torch.zeros(1, 3, 32, 32))


def test_patch_size_stays_a_patch_at_every_size():
    assert [patch_layers(s) for s in (32, 64, 128, 256)] == [1, 2, 3, 3]
    assert receptive_field(patch_layers(256)) == 70 and receptive_field(patch_layers(32)) == 16


# -- the scheme ----------------------------------------------------------------------------------------------------
def tiny_pix2pix(**kwargs) -> Pix2Pix:
    torch.manual_seed(0)
    adam = partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))
    return Pix2Pix(
        generator=UnetGenerator(1, 1, 32, width=8, dropout=0),
        discriminator=partial(PatchGANDiscriminator, width=8, n_layers=1),
        optimizer={"generator": adam, "discriminator": adam},
        loss={"discriminator": binary_cross_entropy_discriminator_loss, "generator": non_saturating_generator_loss},
        source_channels=1,
        **kwargs,
    )


class KeepBatch(pl.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batch = copy.deepcopy(batch)


def test_one_step_is_half_the_d_loss_then_gan_plus_100_l1_for_g(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=pix2pix", "data=mnist_edges2digits", "data.batch_size=4"])
    data = instantiate(cfg.data)
    model = tiny_pix2pix()
    before = copy.deepcopy(model)
    kept = KeepBatch()
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=1, log_every_n_steps=1, logger=False, callbacks=[kept],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=data)
    x, y = kept.batch.source, kept.batch.images
    assert model.discriminator.in_channels == 2  # D judges [source, target]
    with torch.no_grad():  # by hand, with the nets as they were at each step (train mode: BatchNorm on batch stats)
        fake = before.generator(x)
        real_logits = before.discriminator(torch.cat([x, y], 1))
        fake_logits = before.discriminator(torch.cat([x, fake], 1))
        d_loss = 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                        + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        g_logits = model.discriminator.train()(torch.cat([x, fake], 1))  # D after its step; G's step leaves it alone
        g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits)) + 100 * (fake - y).abs().mean()
    logged = trainer.callback_metrics
    assert logged["loss/d"].item() == pytest.approx(d_loss.item(), rel=1e-4)
    assert logged["loss/g"].item() == pytest.approx(g_loss.item(), rel=1e-4)
    assert logged["g/l1"].item() == pytest.approx((fake - y).abs().mean().item(), rel=1e-4)
    changed = lambda a, b: any(not torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # noqa: E731
    assert changed(model.generator, before.generator) and changed(model.discriminator, before.discriminator)


def test_pix2pix_refuses_unpaired_data_before_training(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=pix2pix", "data=mnist_thin2thick", *TINY, *RUN, "metrics=none"])
    with pytest.raises(ValueError, match=r"pix2pix learns from pairs(.|\n)*pairing='unpaired'(.|\n)*model=cyclegan"):
        train(cfg)


def test_the_grid_shows_source_translation_and_ground_truth_rows(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=pix2pix", "data=mnist_edges2digits"])
    data = instantiate(cfg.data)
    model = tiny_pix2pix()
    grid = SampleGrid(tmp_path / "grid", every_n_steps=None, num_samples=8, nrow=4, seed=0)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=1, logger=False, callbacks=[grid],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=data)
    pixels = np.asarray(Image.open(grid.last_path).convert("L")).astype(np.float32) / 255 * 2 - 1
    cell = 32 + 2
    assert pixels.shape == (6 * cell + 2, 4 * cell + 2)  # 2 groups of 4 columns x (source, translated, target)
    sources = data.conditions(8, "source", seed=0)
    expected = [sources, model.sample(8, condition=sources), data.true_target(sources)]
    for row in range(6):
        for column in range(4):
            shown = pixels[2 + row * cell : 2 + row * cell + 32, 2 + column * cell : 2 + column * cell + 32]
            truth = expected[row % 3][4 * (row // 3) + column, 0].numpy()
            assert np.abs(shown - truth).max() < 0.01, (row, column)


# -- the preset, as a user runs it ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_short_run_gets_measurably_closer_to_the_ground_truth(tmp_path: Path):
    cfg = compose_config(tmp_path, [
        "model=pix2pix", "data=mnist_edges2digits", *TINY, *RUN, "trainer.limit_train_batches=120",
        "callbacks.sample_metrics.every_n_steps=1000", "callbacks.sample_metrics.num_samples=200",
        "callbacks.sample_metrics.batch_size=100", "metrics.kid.subset_size=100",
    ])
    pl.seed_everything(cfg.seed)
    data, untrained = instantiate(cfg.data), instantiate(cfg.model)
    metrics = prepare_metrics({"l1": GroundTruthL1(), "psnr": GroundTruthPSNR(), "ssim": GroundTruthSSIM()}, data, "cpu")
    before = score_samples(untrained, metrics, 200, 100, 0, data)  # the same seeded held-out sources as the callback
    logged = train(cfg)  # the default callbacks and the translation metrics of the preset
    assert {"metrics/l1", "metrics/psnr", "metrics/ssim", "metrics/class_preservation", "metrics/fid"} <= set(logged)
    after = {name: logged[f"metrics/{name}"] for name in before}
    assert after["l1"] < 0.6 * before["l1"] and after["psnr"] > before["psnr"] + 3, (before, after)
    assert after["ssim"] > before["ssim"], (before, after)
