"""CycleGAN: the ResNet generator, the image pool, the losses against hand computations, the optimizers and LR
schedule, resume under the real Trainer, and a short run on mnist_thin2thick against its known mapping."""

from functools import partial
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from pytorch_lightning.callbacks import ModelCheckpoint

from conftest import compose_config
from genlab.checkpoints import load_checkpoint
from genlab.data.batch import Batch
from genlab.models import CycleGAN
from genlab.models.cyclegan import POOLS_KEY
from genlab.models.image_pool import ImagePool
from genlab.nets import ResnetGenerator
from genlab.nets.patchgan import PatchGANDiscriminator
from genlab.nets.resnet_generator import paper_block_count, receptive_field

TINY = ["model.generator_ab.width=4", "model.generator_ab.n_blocks=1", "model.discriminator_a.width=8"]
ADAM = partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


def tiny_cyclegan(source_channels: int = 1, channels: int = 1, **kwargs) -> CycleGAN:
    """16-px nets: PatchGAN with one strided layer (n_layers=3 needs >= 32 px)."""
    torch.manual_seed(0)
    gen = lambda i, o: ResnetGenerator(i, o, 16, width=4, n_blocks=1)  # noqa: E731
    disc = lambda c: PatchGANDiscriminator(c, width=4, n_layers=1, norm="instance")  # noqa: E731
    return CycleGAN(
        gen(source_channels, channels), gen(channels, source_channels), disc(source_channels), disc(channels),
        {"generators": ADAM, "discriminators": ADAM}, source_channels, channels, **kwargs,
    )


# -- the ResNet generator ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ins, outs, size", [(1, 1, 32), (1, 3, 32), (3, 3, 48)])
def test_resnet_generator_keeps_the_size_maps_the_channels_and_ends_in_tanh_range(ins, outs, size):
    net = ResnetGenerator(ins, outs, size, width=8, n_blocks=2)
    y = net(torch.randn(2, ins, size, size) * 3)
    assert y.shape == (2, outs, size, size) and y.abs().max() <= 1
    assert net(torch.randn(1, ins, 64, 40)).shape == (1, outs, 64, 40)  # fully convolutional: any size divisible by 4
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.randn(1, ins, 30, 32))
    with pytest.raises(ValueError, match="data.image_size to a multiple of 4"):
        ResnetGenerator(ins, outs, 30)


def test_resnet_generator_follows_the_paper_block_count_and_official_layout():
    # Zhu et al. 2017, Appendix 7.2: 9 blocks at 256 px, 6 at 128 px; 3 below (receptive field 79 px > 2 x 32 px)
    assert [ResnetGenerator(3, 3, s, width=4).n_blocks for s in (256, 128, 64, 32)] == [9, 6, 3, 3]
    assert paper_block_count(512) == 9 and ResnetGenerator(3, 3, 256, n_blocks=2).n_blocks == 2
    assert [receptive_field(n) for n in (3, 6, 9)] == [79, 127, 175]
    net = ResnetGenerator(3, 3, 256)  # the official resnet_9blocks with ngf 64: 11.378M parameters
    assert sum(p.numel() for p in net.parameters()) == 11_378_179
    norms = [m for m in net.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert norms and not any(m.affine or m.track_running_stats for m in norms)
    assert sum(isinstance(m, torch.nn.ReflectionPad2d) for m in net.modules()) == 2 + 2 * 9


# -- the image pool --------------------------------------------------------------------------------------------------
def test_image_pool_returns_the_new_fakes_until_full_then_stores_them():
    pool, rng = ImagePool(5), torch.Generator().manual_seed(0)
    first = torch.randn(3, 1, 4, 4)
    assert torch.equal(pool.query(first, rng), first) and len(pool) == 3
    second = torch.randn(2, 1, 4, 4)
    assert torch.equal(pool.query(second, rng), second) and len(pool) == 5
    assert torch.equal(pool.state(), torch.cat([first, second]))
    off = ImagePool(0)
    assert torch.equal(off.query(first, rng), first) and len(off) == 0


def test_full_image_pool_returns_about_half_from_history_and_swaps_them_in():
    pool, rng = ImagePool(50), torch.Generator().manual_seed(0)
    history = torch.arange(50.0).view(50, 1, 1, 1).expand(50, 1, 2, 2).clone()
    pool.query(history, rng)
    new = 1000 + torch.arange(2000.0).view(2000, 1, 1, 1).expand(2000, 1, 2, 2).clone()
    out = torch.cat([pool.query(new[i : i + 4], rng) for i in range(0, 2000, 4)])
    assert out.shape == new.shape
    from_history = (out != new).flatten(1).any(1)
    assert 0.45 < from_history.float().mean() < 0.55  # official ImagePool: p = 1/2 per image
    # a returned old image is one that was stored, and the new image took its place
    stored_ever = set(range(50)) | set(range(1000, 3000))
    assert {int(v) for v in out[from_history, 0, 0, 0]} <= stored_ever
    assert len(pool) == 50 and any(int(v) >= 1000 for v in pool.state()[:, 0, 0, 0])
    # seeded: pools in the same state drawing from equally seeded generators return the same mix
    a, b, c = ImagePool(50), ImagePool(50), ImagePool(50)
    for p in (a, b, c):
        p.load_state(history)
    seeded = lambda seed: torch.Generator().manual_seed(seed)  # noqa: E731
    mix = a.query(new[:40], seeded(5))
    assert torch.equal(mix, b.query(new[:40], seeded(5))) and not torch.equal(mix, c.query(new[:40], seeded(6)))


def test_image_pool_state_round_trips_and_refuses_a_bigger_pool():
    pool = ImagePool(4)
    pool.query(torch.randn(4, 3, 8, 8), torch.Generator())
    restored = ImagePool(4)
    restored.load_state(pool.state())
    assert torch.equal(restored.state(), pool.state())
    with pytest.raises(ValueError, match="model.pool_size=4"):
        ImagePool(2).load_state(pool.state())


# -- losses against hand computations ------------------------------------------------------------------------------
def test_generator_loss_is_lsgan_plus_ten_cycle_plus_five_identity_by_hand():
    model = tiny_cyclegan()
    a, b = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    loss, logs, fake_a, fake_b = model.generator_objective(a, b)
    g_ab, g_ba, d_a, d_b = model.generator_ab, model.generator_ba, model.discriminator_a, model.discriminator_b
    with torch.no_grad():
        adversarial = ((d_b(g_ab(a)) - 1) ** 2).mean() + ((d_a(g_ba(b)) - 1) ** 2).mean()  # nn.MSELoss vs 1
        cycle = (g_ba(g_ab(a)) - a).abs().mean() + (g_ab(g_ba(b)) - b).abs().mean()
        identity = (g_ba(a) - a).abs().mean() + (g_ab(b) - b).abs().mean()
        assert torch.allclose(loss, adversarial + 10 * cycle + 0.5 * 10 * identity, atol=1e-6)
        assert torch.allclose(logs["g/cycle_a"], (g_ba(g_ab(a)) - a).abs().mean())
        assert torch.equal(fake_b, g_ab(a)) and torch.equal(fake_a, g_ba(b)) and not fake_a.requires_grad
    no_identity = tiny_cyclegan(lambda_identity=0.0)
    loss, logs, *_ = no_identity.generator_objective(a, b)
    assert "g/identity_a" not in logs and torch.allclose(loss, adversarial + 10 * cycle, atol=1e-6)


def test_discriminator_loss_is_halved_least_squares_per_discriminator_by_hand():
    model = tiny_cyclegan()
    a, b, fa, fb = (torch.rand(2, 1, 16, 16) * 2 - 1 for _ in range(4))
    loss, logs = model.discriminator_objective(a, b, fa, fb)
    d_a, d_b = model.discriminator_a, model.discriminator_b
    with torch.no_grad():
        by_hand_a = 0.5 * (((d_a(a) - 1) ** 2).mean() + (d_a(fa) ** 2).mean())  # official (real + fake) * 0.5
        by_hand_b = 0.5 * (((d_b(b) - 1) ** 2).mean() + (d_b(fb) ** 2).mean())
    assert torch.allclose(logs["d/a"], by_hand_a) and torch.allclose(logs["d/b"], by_hand_b)
    assert torch.allclose(loss, by_hand_a + by_hand_b)


def test_identity_loss_needs_equal_channels_and_nets_must_fit_the_data():
    with pytest.raises(ValueError, match="model.lambda_identity=0"):
        tiny_cyclegan(source_channels=1, channels=3)
    model = tiny_cyclegan(source_channels=1, channels=3, lambda_identity=0.0)  # grey -> colour without identity
    assert model.sample(2, condition=torch.zeros(2, 1, 16, 16)).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"model.generator_ab .*1 -> 3"):
        CycleGAN(*(ResnetGenerator(1, 1, 16, width=4, n_blocks=0) for _ in range(2)),
                 *(PatchGANDiscriminator(1, 4, 1) for _ in range(2)), {"generators": ADAM, "discriminators": ADAM},
                 source_channels=1, channels=3, lambda_identity=0.0)
    with pytest.raises(ValueError, match="data=mnist_thin2thick"):
        tiny_cyclegan().source_and_target(Batch(torch.zeros(2, 1, 16, 16), torch.tensor([0, 1])))


def test_translation_rows_are_source_translated_reconstructed():
    model = tiny_cyclegan()
    source = torch.rand(3, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        rows = model.translation_rows(source)
        assert list(rows) == ["source", "translated", "reconstructed"]
        assert torch.equal(rows["translated"], model.generator_ab(source))
        assert torch.equal(rows["reconstructed"], model.generator_ba(model.generator_ab(source)))
    assert torch.equal(model.sample(3, condition=source), rows["translated"])


def test_one_optimizer_covers_both_generators_and_one_both_discriminators():
    model = tiny_cyclegan()
    generators, discriminators = model.configure_optimizers()
    ids = lambda opt: {id(p) for group in opt.param_groups for p in group["params"]}  # noqa: E731
    nets = lambda *ms: {id(p) for m in ms for p in m.parameters()}  # noqa: E731
    assert ids(generators) == nets(model.generator_ab, model.generator_ba)
    assert ids(discriminators) == nets(model.discriminator_a, model.discriminator_b)
    assert generators.defaults["lr"] == 2e-4 and generators.defaults["betas"] == (0.5, 0.999)


# -- under the real Trainer ------------------------------------------------------------------------------------------
class EpochProbe(pl.Callback):
    """What a run starts from and each epoch trains with: the pools and the generators' lr."""

    def __init__(self):
        self.start_pools: tuple[torch.Tensor, torch.Tensor] | None = None
        self.epoch_lrs: list[float] = []

    def on_train_start(self, trainer, pl_module):
        self.start_pools = (pl_module.pool_a.state(), pl_module.pool_b.state())

    def on_train_epoch_start(self, trainer, pl_module):
        self.epoch_lrs.append(pl_module.optimizers()[0].param_groups[0]["lr"])


def fit(tmp_path: Path, folder: str, epochs: int, overrides: list[str], ckpt_path: Path | None = None, batches: int = 3,
        data: str = "mnist_thin2thick"):
    cfg = compose_config(tmp_path, ["model=cyclegan", f"data={data}", *TINY, *overrides])
    model, datamodule, probe = instantiate(cfg.model), instantiate(cfg.data), EpochProbe()
    checkpoints = ModelCheckpoint(dirpath=tmp_path / folder, save_last=True, every_n_epochs=1)
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=epochs, limit_train_batches=batches, limit_val_batches=0, logger=False,
        callbacks=[checkpoints, probe], enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    return model, probe, tmp_path / folder / "last.ckpt"


@pytest.mark.slow
def test_resume_restores_the_image_pools_and_the_lr_schedule_position(tmp_path: Path):
    short = ["data.batch_size=4", "model.pool_size=6", "model.scheduler.constant_epochs=1", "model.scheduler.decay_epochs=2"]
    _, uninterrupted, _ = fit(tmp_path, "full", 3, short)
    # linear decay, official factor 1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1): 1, 2/3, 1/3
    assert uninterrupted.epoch_lrs == pytest.approx([2e-4, 2e-4 * 2 / 3, 2e-4 / 3])

    first, _, ckpt = fit(tmp_path, "part", 2, short)
    saved = load_checkpoint(ckpt)  # weights_only=True
    assert saved[POOLS_KEY]["a"].shape == (6, 1, 32, 32) and torch.equal(saved[POOLS_KEY]["b"], first.pool_b.state())
    resumed, probe, ckpt = fit(tmp_path, "part", 3, short, ckpt_path=ckpt)
    assert torch.equal(probe.start_pools[0], saved[POOLS_KEY]["a"]) and torch.equal(probe.start_pools[1], saved[POOLS_KEY]["b"])
    assert probe.epoch_lrs == pytest.approx(uninterrupted.epoch_lrs[2:])  # continues the decay, not restarts it
    assert load_checkpoint(ckpt)["lr_schedulers"][0]["last_epoch"] == 3


def test_training_past_the_end_of_the_schedule_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="runs past the end of the LR schedule"):
        fit(tmp_path, "past", 4, ["data.batch_size=4", "model.scheduler.constant_epochs=1", "model.scheduler.decay_epochs=2"])


@pytest.mark.slow
def test_a_short_run_moves_translations_towards_the_known_thin_to_thick_map(tmp_path: Path):
    torch.manual_seed(0)
    cfg = compose_config(tmp_path, ["model=cyclegan", "data=mnist_thin2thick", "model.generator_ab.width=8",
                                    "model.generator_ab.n_blocks=1", "model.discriminator_a.width=8", "data.batch_size=8"])
    datamodule = instantiate(cfg.data)
    source = datamodule.conditions(64, "source", seed=0)  # held-out A digits
    target = datamodule.true_target(source)

    def l1(model) -> float:
        return float((model.sample(64, condition=source) - target).abs().mean())

    model = instantiate(cfg.model)
    untrained = l1(model)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=40, limit_val_batches=0, logger=False,
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(model, datamodule=datamodule)
    trained = l1(model)
    assert trained < 0.5 * untrained, (untrained, trained)


# -- data it takes and refuses ---------------------------------------------------------------------------------------
def write_unpaired(root: Path, counts: dict[str, int]) -> Path:
    """CycleGAN's layout with JPEGs of odd sizes: reddish A images, bluish B images."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder, count in counts.items():
        (root / folder).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (36 + i, 41, 3), dtype=np.uint8)
            pixels[..., 0 if folder.endswith("A") else 2] = 255
            Image.fromarray(pixels).save(root / folder / f"{i:03d}.jpg")
    return root


@pytest.mark.slow
def test_unpaired_folder_trains_under_the_defaults_a_user_gets(tmp_path: Path):
    from genlab.run import train

    root = write_unpaired(tmp_path / "horse2zebra", {"trainA": 5, "trainB": 3, "testA": 2})
    cfg = compose_config(tmp_path, ["model=cyclegan", "data=unpaired", f"data.root={root}", "data.image_size=32",
                                    "data.num_workers=0", *TINY, "trainer.max_epochs=1", "++trainer.limit_train_batches=3",
                                    "trainer.accelerator=cpu", "print_config=false", "callbacks.sample_grid.num_samples=4"])
    assert cfg.data.batch_size == 1 and "sample_grid" in cfg.callbacks  # the official batch of 1, default callbacks
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor([metrics["loss/g"], metrics["loss/d"]])).all()
    assert list((tmp_path / "run" / "samples").glob("*.png"))
    saved = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert saved[POOLS_KEY]["b"].shape == (3, 3, 32, 32)  # one fake per batch of 1, pool not yet full


@pytest.mark.slow
def test_paired_data_trains_as_unpaired_and_data_without_sources_is_refused(tmp_path: Path):
    from genlab.run import check_model_fits_data

    model, probe, _ = fit(tmp_path, "paired", 1, ["data.batch_size=4"], batches=2, data="mnist_edges2digits")
    assert len(model.pool_a) == 8 and probe.epoch_lrs == [2e-4]
    for data in ("mnist_domains", "mnist5k"):
        cfg = compose_config(tmp_path, ["model=cyclegan", f"data={data}"])
        with pytest.raises(ValueError, match="needs translation data with source images.*data=mnist_thin2thick"):
            check_model_fits_data(cfg)
