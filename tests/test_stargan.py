"""StarGAN: its nets, its condition (sources + target domains) and the seeded conditions the data hands out, its
losses against hand computations, its grid, and short real runs on the embedded mnist_domains and a CelebA fixture."""

import copy
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from PIL import Image

from conftest import FAST, compose_config, run_script
from genlab.checkpoints import load_checkpoint
from genlab.data.batch import DomainTransfer, conditions_for, draw_target_domains, single_domain_changes
from genlab.data.translation.domains import STARGAN_ATTRIBUTES
from genlab.losses import domain_classification_loss
from genlab.nets import StarGANDiscriminator, StarGANGenerator
from genlab.nets.stargan import ResidualBlock
from genlab.run import train
from test_translation_data import write_celeba_attributes

TINY = ["model.generator.conv_dim=8", "model.generator.repeat_num=1", "model.discriminator.conv_dim=8"]


def config(tmp_path: Path, *overrides: str):
    """The preset with the paper's settings (``~demo``: without the CPU recipe of conf/demo/stargan_mnist_domains.yaml)."""
    return compose_config(tmp_path, ["model=stargan", "data=mnist_domains", "~demo", *TINY, *overrides])


@pytest.fixture(scope="module")
def domains(tmp_path_factory):
    """The embedded mnist_domains datamodule (built once per session in the test cache) and a tiny StarGAN for it."""
    cfg = config(tmp_path_factory.mktemp("stargan"))
    torch.manual_seed(0)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    return cfg, datamodule, instantiate(cfg.model)


# -- nets ------------------------------------------------------------------------------------------------------------
def test_nets_tile_the_domain_vector_and_have_both_heads():
    generator = StarGANGenerator(channels=3, num_domains=4, image_size=32, conv_dim=8)
    discriminator = StarGANDiscriminator(channels=3, image_size=32, num_domains=4, conv_dim=8)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    out = generator(images, F.one_hot(torch.tensor([0, 3]), 4).float())
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1
    assert generator.main[0].in_channels == 3 + 4  # image channels + one map per domain
    scores, logits = discriminator(images)
    assert scores.shape == (2, 1, 2, 2) and logits.shape == (2, 4)  # 32 / 2**4: the official 2x2 patch map
    # the target domain changes the output: G reads it
    assert not torch.allclose(out, generator(images, F.one_hot(torch.tensor([1, 2]), 4).float()))
    # sizes by image size: 3 residual blocks below 128 px, the official 6 at 128; D: log2(size) - 1 strided convs
    blocks = lambda net: sum(isinstance(m, ResidualBlock) for m in net.modules())  # noqa: E731
    assert blocks(generator) == 3 and blocks(StarGANGenerator(3, 5, image_size=128, conv_dim=2)) == 6
    big = StarGANDiscriminator(channels=3, image_size=128, num_domains=5, conv_dim=2)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in big.main) == 6 and big.conv2.kernel_size == (2, 2)
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert norms and all(m.affine and m.track_running_stats for m in norms)
    # the official model.py's state-dict keys, so its checkpoints load
    keys = set(generator.state_dict()) | {f"D.{k}" for k in discriminator.state_dict()}
    assert {"main.0.weight", "main.1.running_mean", "main.9.main.1.weight", "D.main.0.bias", "D.conv1.weight", "D.conv2.weight"} <= keys
    assert not any(isinstance(m, (torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d)) for m in discriminator.modules())


def test_generator_normalises_each_image_by_its_own_statistics_in_eval_mode_too():
    # as the official code, which never calls eval(): a translation depends neither on the rest of the batch nor on
    # the running statistics, which training still tracks and eval-mode sampling leaves alone
    generator = StarGANGenerator(channels=3, num_domains=4, image_size=32, conv_dim=4, repeat_num=1)
    images, domains = torch.rand(3, 3, 32, 32) * 2 - 1, F.one_hot(torch.tensor([0, 1, 2]), 4).float()
    with torch.no_grad():
        training_mode = generator(images[:1], domains[:1])  # moves the running statistics
        generator.eval()
        tracked = {k: v.clone() for k, v in generator.state_dict().items()}
        alone, together = generator(images[:1], domains[:1]), generator(images, domains)[:1]
    assert float(generator.main[1].running_var.sub(1).abs().max()) > 0
    assert torch.allclose(alone, together, atol=1e-6) and torch.allclose(alone, training_mode, atol=1e-6)
    assert all(torch.equal(tracked[k], v) for k, v in generator.state_dict().items())


def test_nets_refuse_wrong_shapes_with_what_they_expect():
    generator = StarGANGenerator(channels=3, num_domains=4, image_size=32, conv_dim=4)
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        generator(torch.zeros(2, 3, 32, 32), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="multiples of 4"):
        generator(torch.zeros(2, 3, 30, 30), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="divisible by 2\\*\\*repeat_num"):
        StarGANDiscriminator(channels=3, image_size=32, num_domains=4, repeat_num=6)


# -- the condition and the seeded conditions ------------------------------------------------------------------------
def test_domain_transfer_slices_moves_and_refuses_unequal_lengths():
    transfer = DomainTransfer(torch.zeros(5, 3, 4, 4), torch.arange(5), torch.arange(5).flip(0))
    part = transfer[1:3].to("cpu")
    assert len(part) == 2 and part.target.tolist() == [1, 2] and part.source_domains.tolist() == [3, 2]
    with pytest.raises(ValueError, match="one target"):
        DomainTransfer(torch.zeros(5, 3, 4, 4), torch.arange(4))


def test_conditions_are_seeded_held_out_images_with_other_target_domains(domains):
    _, datamodule, model = domains
    first = conditions_for(model, datamodule, 40, seed=3)
    again = datamodule.conditions(40, "domain_transfer", seed=3)
    other = datamodule.conditions(40, "domain_transfer", seed=4)
    assert isinstance(first, DomainTransfer) and first.source.shape == (40, 3, 32, 32)
    assert torch.equal(first.source, again.source) and torch.equal(first.target, again.target)
    assert not torch.equal(first.source, other.source)
    # the same held-out items a seeded draw picks (so source_labels gives their digits), with their own domains
    indices = torch.randint(len(datamodule.val_set), (40,), generator=torch.Generator().manual_seed(3)).tolist()
    held_out = datamodule.batch_of(datamodule.val_set, indices)
    assert torch.equal(first.source, held_out.images) and torch.equal(first.source_domains, held_out.labels)
    assert (first.target != first.source_domains).all() and first.target.dtype == torch.int64
    assert set(first.target.tolist()) == {0, 1, 2, 3}  # every other domain is drawn


def test_attribute_targets_change_one_attribute_with_exclusive_hair_colours():
    names = list(STARGAN_ATTRIBUTES)  # Black_Hair, Blond_Hair, Brown_Hair, Male, Young
    own = torch.tensor([[1, 0, 0, 1, 1], [0, 0, 1, 0, 0]], dtype=torch.float32)
    changes = single_domain_changes(own, 5, names)  # the official create_labels, by hand:
    assert changes[0].tolist() == [[1, 0, 0, 1, 1], [1, 0, 0, 0, 0]]  # black hair set, other hair cleared
    assert changes[1].tolist() == [[0, 1, 0, 1, 1], [0, 1, 0, 0, 0]]
    assert changes[3].tolist() == [[1, 0, 0, 0, 1], [0, 0, 1, 1, 0]]  # Male flipped
    assert changes[4].tolist() == [[1, 0, 0, 1, 0], [0, 0, 1, 0, 1]]  # Young flipped
    many = own.repeat(200, 1)
    targets = draw_target_domains(many, 5, torch.Generator().manual_seed(0), names)
    assert torch.equal(targets, draw_target_domains(many, 5, torch.Generator().manual_seed(0), names))
    assert (targets != many).any(1).all()  # never the source's own vector
    assert (targets[:, :3].sum(1) == 1).all()  # one hair colour each
    candidates = torch.stack(changes)  # every target is one of the single-attribute changes
    assert all(any(torch.equal(t, c[i % 2]) for c in candidates) for i, t in enumerate(targets))
    assert len({tuple(t.tolist()) for t in targets[::2]}) == 4  # all 4 changes of row 0 that differ (black is its own)


# -- sampling and the grid -------------------------------------------------------------------------------------------
def test_sample_translates_a_domain_transfer_and_refuses_anything_else(domains):
    _, datamodule, model = domains
    condition = datamodule.conditions(6, "domain_transfer", seed=0)
    out = model.sample(6, condition=condition)
    assert out.shape == (6, 3, 32, 32) and out.abs().max() <= 1 and not out.requires_grad
    assert torch.equal(out, model.sample(6, condition=condition, generator=torch.Generator().manual_seed(9)))
    with pytest.raises(ValueError, match="DomainTransfer"):
        model.sample(6)
    with pytest.raises(ValueError, match=r"DomainTransfer.*got a tensor of shape \(6, 3, 32, 32\)"):
        model.sample(6, condition=condition.source)
    with pytest.raises(ValueError, match=r"ids in 0\.\.3"):
        model.sample(2, condition=DomainTransfer(condition.source[:2], torch.tensor([0, 4])))


def test_the_grid_has_the_sources_then_one_row_per_domain(domains):
    _, datamodule, model = domains
    condition = datamodule.conditions(8, "domain_transfer", seed=0)
    rows = model.translation_rows(condition)
    assert list(rows) == ["source"] + [f"to_domain_{k}" for k in range(4)] + ["translated"]  # no names before fitting
    assert all(r.shape == (8, 3, 32, 32) for r in rows.values()) and torch.equal(rows["source"], condition.source)
    for k in range(4):
        assert torch.equal(rows[f"to_domain_{k}"], model.sample(8, condition=DomainTransfer(condition.source, torch.full((8,), k))))
    assert torch.equal(rows["translated"], model.sample(8, condition=condition))  # what the metrics score


# -- losses ----------------------------------------------------------------------------------------------------------
def test_domain_classification_loss_is_ce_for_ids_and_summed_bce_for_attributes():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    ids = torch.tensor([0, 2])
    p = logits.softmax(1)
    assert torch.isclose(domain_classification_loss(logits, ids), -(p[0, 0].log() + p[1, 2].log()) / 2)
    attributes = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    q = logits.sigmoid()
    by_hand = -(attributes * q.log() + (1 - attributes) * (1 - q).log()).sum() / 2  # summed over attributes, / N
    assert torch.isclose(domain_classification_loss(logits, attributes), by_hand)


def test_objectives_weigh_their_terms_as_the_paper(domains):
    cfg, datamodule, _ = domains
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    batch = next(iter(datamodule.train_dataloader()))
    real, own = batch.images[:4], batch.labels[:4]
    target = (own + 1) % 4
    loss, logs = model.generator_objective(real, own, target)
    fake = model.translate(real, target)
    scores, logits = model.discriminator(fake)
    reconstruction = (model.translate(fake, own) - real).abs().mean()
    assert torch.isclose(logs["g/reconstruction_l1"], reconstruction)
    assert torch.isclose(logs["g/classification_loss"], F.cross_entropy(logits, target))
    assert torch.isclose(loss, -scores.mean() + 1.0 * F.cross_entropy(logits, target) + 10.0 * reconstruction)

    fake = fake.detach()

    def d_loss(lambda_gp: float) -> torch.Tensor:
        model.lambda_gp = lambda_gp
        torch.manual_seed(5)  # the same interpolation weights eps for every weight
        return model.discriminator_objective(real, own, target, fake)[0]

    real_scores, real_logits = model.discriminator(real)
    fake_scores, _ = model.discriminator(fake)
    without_gp = fake_scores.mean() - real_scores.mean() + F.cross_entropy(real_logits, own)
    assert torch.isclose(d_loss(0.0), without_gp, atol=1e-6)
    assert torch.isclose(d_loss(10.0) - d_loss(0.0), 10 * (d_loss(1.0) - d_loss(0.0)), rtol=1e-4)
    assert d_loss(1.0) > d_loss(0.0)


# -- training --------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_short_run_teaches_the_generator_the_target_domains(tmp_path: Path, domains):
    """Judged by the trained D's domain classifier (one fixed judge), translations by the trained G go to their target
    domains clearly more often than those of the untrained G; the run writes the StarGAN grid. Tiny nets with lr 1e-3
    and n_critic 1 learn in 250 batches what the paper's settings need thousands of batches for on a CPU."""
    _, datamodule, _ = domains
    cfg = config(tmp_path, *FAST, "++trainer.limit_train_batches=250", "model.n_critic=1", "model.optimizer.generator.lr=1e-3",
                 "model.optimizer.discriminator.lr=1e-3", "callbacks.sample_grid.num_samples=8", "callbacks.sample_grid.nrow=8",
                 "callbacks.sample_grid.every_n_steps=null")
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    untrained = copy.deepcopy(model.generator)
    train(cfg)
    model.load_state_dict(load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["state_dict"])
    condition = datamodule.conditions(200, "domain_transfer", seed=1)
    trained_accuracy = model.target_accuracy(condition)
    model.generator = untrained
    untrained_accuracy = model.target_accuracy(condition)
    assert trained_accuracy > untrained_accuracy + 0.1, (trained_accuracy, untrained_accuracy)
    (grid,) = (tmp_path / "run" / "samples").glob("step_*.png")
    # the sources, one row per domain, the translation into the drawn targets and its ground truth (2 px padding)
    assert Image.open(grid).height == 7 * 32 + 8 * 2


def test_trains_on_celeba_attribute_vectors(tmp_path: Path):
    write_celeba_attributes(tmp_path / "data", n=12)
    cfg = compose_config(tmp_path, [
        "model=stargan", "data=celeba_domains", f"data.root={tmp_path / 'data'}", "data.held_out_count=4",
        "data.image_size=32", "data.batch_size=4", "data.num_workers=0", *TINY, *FAST, "model.n_critic=1",
        "callbacks.sample_grid.num_samples=4",
    ])
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["loss/g"])) and 0 <= metrics["d/real_domain_accuracy"] <= 1
    model = instantiate(cfg.model)
    datamodule = instantiate(cfg.data)
    condition = datamodule.conditions(4, "domain_transfer", seed=0)
    assert condition.target.shape == (4, 5) and ((condition.target != condition.source_domains).sum(1) >= 1).all()
    rows = model.translation_rows(condition)
    assert list(rows) == ["source", *(f"to_{name}" for name in STARGAN_ATTRIBUTES), "translated"]


def test_the_demo_trains_with_its_metrics_and_domain_names_under_the_default_logger(tmp_path: Path):
    """``python train.py model=stargan`` as a user runs it (a real process: the preset data mnist_domains, its CPU
    recipe, the default callbacks and metrics, W&B offline), cut to 3 batches: the translation metrics are scored,
    judged without the run's D, and the checkpoint names the domains."""
    result = run_script("train.py", ["model=stargan", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
                                     "callbacks.sample_metrics.num_samples=100", "callbacks.sample_metrics.batch_size=100"],
                        tmp_path, env=os.environ | {"WANDB_MODE": "offline"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "data=mnist_domains" in result.stdout  # added by conf/preset_data.yaml
    (run,) = (tmp_path / "outputs" / "runs").iterdir()
    (summary,) = [line for line in (run / "train.log").read_text().splitlines() if line.startswith("  metrics  ")]
    values = dict(pair.split() for pair in summary.split("  metrics", 1)[1].split("(after")[0].split(","))
    assert set(values) == {"l1", "psnr", "ssim", "class_preservation", "target_accuracy"}  # colour: no classifier FID
    assert all(0 <= float(values[name]) <= 1 for name in ("class_preservation", "target_accuracy"))
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert checkpoint["domain_names"] == ["coloured", "inverted", "plain", "thick"] and not checkpoint["attribute_domains"]
    (wandb_run,) = (run / "wandb").glob("offline-run-*")
    assert list((wandb_run / "files" / "media" / "images" / "samples").glob("grid_*.png"))
