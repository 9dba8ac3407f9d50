"""The semi-supervised GAN (Salimans et al. 2016, Sec. 5): the K+1 formulation against hand-computed values, the
labelled-subset protocol of the data, which images each term of the objective sees, and a short run that brings the
discriminator's held-out error far below chance."""

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from conftest import compose_config
from genlab import losses
from genlab.callbacks import ClassifierError
from genlab.data import Batch, MNIST5kDataModule
from genlab.data.labelled import labelled_subset
from genlab.models import SemiSupervisedGAN
from genlab.models.adversarial import Latent

SMALL = ["model=ssgan", "model.generator.hidden=[64]", "model.discriminator.hidden=[64,32]"]


def small_ssgan(tmp_path: Path, *overrides: str) -> SemiSupervisedGAN:
    torch.manual_seed(0)
    return instantiate(compose_config(tmp_path, [*SMALL, *overrides]).model)


# -- the K+1 formulation ----------------------------------------------------------------------------------------------
def test_the_fake_logit_fixed_at_zero_gives_d_as_z_over_z_plus_one():
    real_logits = torch.tensor([[0.0, math.log(3.0)]])  # Z = 1 + 3 = 4: D(x) = 4/5
    fake_logits = torch.tensor([[math.log(0.5), math.log(0.5)]])  # Z = 1: D(G(z)) = 1/2
    real, fake = losses.real_logit_from_class_logits(real_logits), losses.real_logit_from_class_logits(fake_logits)
    assert torch.sigmoid(real).item() == pytest.approx(4 / 5) and torch.sigmoid(fake).item() == pytest.approx(1 / 2)
    unsupervised = losses.binary_cross_entropy_discriminator_loss(real, fake)
    assert unsupervised.item() == pytest.approx(-math.log(4 / 5) - math.log(1 - 1 / 2), rel=1e-6)
    # the same as a K+1-way softmax with an explicit fake logit of 0: -log(1 - p_fake(x)) - log p_fake(G(z))
    k_plus_one = lambda logits: F.softmax(torch.cat([logits, torch.zeros(len(logits), 1)], 1), 1)  # noqa: E731
    explicit = -torch.log(1 - k_plus_one(real_logits)[:, -1]) - torch.log(k_plus_one(fake_logits)[:, -1])
    assert unsupervised.item() == pytest.approx(explicit.item(), rel=1e-6)


def test_the_supervised_loss_is_the_class_probability_given_real():
    logits = torch.tensor([[0.0, math.log(3.0)], [math.log(2.0), 0.0]])
    labels = torch.tensor([1, 0])
    by_hand = (-math.log(3 / 4) - math.log(2 / 3)) / 2  # softmax over the K real classes only
    assert losses.supervised_class_loss(logits, labels).item() == pytest.approx(by_hand, rel=1e-6)
    p = F.softmax(torch.cat([logits, torch.zeros(2, 1)], 1), 1)  # p(y | x, y < K+1) = p(y | x) / (1 - p_fake)
    conditional = p[torch.arange(2), labels] / (1 - p[:, -1])
    assert by_hand == pytest.approx(-conditional.log().mean().item(), rel=1e-6)


# -- the labelled subset (data) ---------------------------------------------------------------------------------------
def test_labelled_subset_has_the_count_per_class_and_is_seeded():
    labels = torch.arange(5).repeat_interleave(torch.tensor([30, 12, 20, 9, 40]))
    chosen = labelled_subset(labels, 9, 5, seed=0, where="toy")
    assert torch.equal(torch.bincount(labels[chosen], minlength=5), torch.full((5,), 9))
    assert len(chosen.unique()) == 45
    assert torch.equal(chosen, labelled_subset(labels, 9, 5, seed=0, where="toy"))
    assert not torch.equal(chosen, labelled_subset(labels, 9, 5, seed=1, where="toy"))
    with pytest.raises(ValueError, match=r"labels_per_class=10 .* toy has fewer in classes \{3: 9\}.*at most 9"):
        labelled_subset(labels, 10, 5, seed=0, where="toy")


def test_the_datamodule_hides_labels_and_shows_the_labelled_subset_in_every_batch():
    datamodule = MNIST5kDataModule(batch_size=50, labels_per_class=10)
    datamodule.setup("fit")
    labelled = datamodule.labelled_indices
    train_labels = torch.stack([datamodule.train_set[i][1] for i in range(len(datamodule.train_set))])
    assert torch.equal(torch.bincount(train_labels[labelled], minlength=10), torch.full((10,), 10))

    torch.manual_seed(0)
    loader = datamodule.train_dataloader()
    batches = list(loader)
    assert len(batches) == len(loader) == len(datamodule.train_set) // 50
    for batch in batches:
        assert len(batch) == 100 and torch.equal(batch.labels[:50], torch.full((50,), -1))
        assert bool((batch.labels[50:] >= 0).all())
    # the unlabelled half is a permutation of the training split; the labelled half only ever the 100 labelled digits
    unlabelled = torch.cat([b.images[:50] for b in batches])
    assert len(unlabelled) == 4500 - 4500 % 50
    labelled_images = datamodule.train_set[labelled.tolist()][0]
    flat = labelled_images.flatten(1)
    for batch in batches[:3]:
        same = (batch.images[50:].flatten(1)[:, None, :] == flat[None]).all(2)  # (50 shown, 100 labelled digits)
        assert torch.equal(same.sum(1), torch.ones(50, dtype=torch.long))  # each is exactly one of them...
        assert torch.equal(batch.labels[50:], train_labels[labelled][same.int().argmax(1)])  # ...with its own label
    val = next(iter(datamodule.val_dataloader()))
    assert bool((val.labels >= 0).all())  # the held-out split keeps every label: it is what the classifier is scored on


def test_asking_for_more_labels_than_the_data_has_or_for_labels_of_unlabelled_data_fails_clearly():
    with pytest.raises(ValueError, match=r"labels_per_class=600 .* MNIST5kDataModule has fewer .* at most \d+"):
        MNIST5kDataModule(labels_per_class=600).setup("fit")
    with pytest.raises(ValueError, match=r"needs labelled data \(data.num_classes >= 2, here 0\)"):
        MNIST5kDataModule(num_classes=0, labels_per_class=10)


def test_the_preset_selects_10_labels_per_class_and_the_paper_settings(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=ssgan"])
    assert cfg.data.labels_per_class == 10 and cfg.model.feature_matching and cfg.model.adversarial_weight == 0.5
    assert cfg.model.num_classes == cfg.data.num_classes == cfg.model.discriminator.num_classes == 10
    assert cfg.model.optimizer.discriminator.lr == cfg.model.optimizer.generator.lr == 3e-3
    assert compose_config(tmp_path, ["model=ssgan", "data.labels_per_class=20"]).data.labels_per_class == 20
    assert "labels_per_class" not in compose_config(tmp_path, ["model=dcgan"]).data  # other models: all labels


# -- the scheme -------------------------------------------------------------------------------------------------------
def test_each_term_sees_its_images(tmp_path: Path):
    """Unlabelled images (-1) feed the GAN loss, labelled ones the cross-entropy (noise off, so D is a function)."""
    model = small_ssgan(tmp_path, "model.discriminator.input_noise=0", "model.discriminator.hidden_noise=0")
    torch.manual_seed(1)
    images, fake = torch.rand(6, 1, 32, 32) * 2 - 1, torch.rand(3, 1, 32, 32) * 2 - 1
    batch = Batch(images, torch.tensor([-1, -1, -1, -1, 2, 7]))
    loss, logs = model.discriminator_objective(batch, fake, Latent(torch.zeros(3, 100)))
    lse = lambda x: torch.logsumexp(model.discriminator(x), 1)  # noqa: E731
    adversarial = losses.binary_cross_entropy_discriminator_loss(lse(images[:4]), lse(fake))
    supervised = F.cross_entropy(model.discriminator(images[4:]), torch.tensor([2, 7]))
    assert loss.item() == pytest.approx((0.5 * adversarial + supervised).item(), rel=1e-5)
    assert logs["loss/d_supervised"].item() == pytest.approx(supervised.item(), rel=1e-5)
    # feature matching compares the fakes with the unlabelled images only
    g_loss, _ = model.generator_objective(batch, fake, Latent(torch.zeros(3, 100)))
    expected = losses.feature_matching_loss(model.discriminator.features(images[:4]), model.discriminator.features(fake))
    assert g_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="no labelled image"):
        model.discriminator_objective(Batch(images, torch.full((6,), -1)), fake, Latent(torch.zeros(3, 100)))


def test_the_discriminator_must_give_one_logit_per_class(tmp_path: Path):
    with pytest.raises(InstantiationException) as err:
        small_ssgan(tmp_path, "model.discriminator.num_classes=5")
    assert "one logit per class (10)" in str(err.value.__cause__) and "outputs 5" in str(err.value.__cause__)


def test_several_steps_a_batch_are_refused(tmp_path: Path):
    # a slice of {B unlabelled, B labelled} would hold only one kind
    with pytest.raises(InstantiationException) as err:
        small_ssgan(tmp_path, "model.steps_per_batch=2")
    assert "model=ssgan takes one step a batch" in str(err.value.__cause__)


def test_a_short_run_takes_the_held_out_error_far_below_chance(tmp_path: Path):
    """Two epochs (180 batches of 50 unlabelled + 50 labelled digits) with the preset's settings and a narrower D:
    the held-out error falls from chance (about 0.9) to below 0.5 (0.24 when measured)."""
    model = small_ssgan(tmp_path, "model.discriminator.hidden=[256,128]")
    datamodule = MNIST5kDataModule(batch_size=50, labels_per_class=10)
    callback = ClassifierError(every_n_steps=None)
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, callbacks=[callback], enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    datamodule.setup("fit")
    images, labels = datamodule.val_set[:]
    before = float((model.classify(images).argmax(1) != labels).float().mean())
    trainer.fit(model, datamodule=datamodule)
    assert before > 0.7 and callback.history[-1] < 0.5, (before, callback.history)


def test_the_semi_supervised_loader_resumes_mid_epoch_and_across_epochs_exactly():
    # what Lightning does on a resume: a new loader gets the killed run's loader state, then the epoch is set
    def fresh_loader():
        datamodule = MNIST5kDataModule(batch_size=50, labels_per_class=10)
        datamodule.shuffle_seed = 3
        datamodule.setup("fit")
        return datamodule.train_dataloader()

    def epoch(loader, number: int, stop: int | None = None) -> list[torch.Tensor]:
        loader.batch_sampler.set_epoch(number)
        batches = []
        for batch in loader:
            batches.append(torch.cat([batch.images.flatten(1).sum(1), batch.labels.float()]))
            if len(batches) == stop:
                break
        return batches

    full = fresh_loader()
    expected = epoch(full, 0) + epoch(full, 1)
    assert not torch.equal(expected[0], expected[len(expected) // 2])  # each epoch its own order

    for stop_epoch, stop_after in [(0, 7), (1, 2)]:
        killed = fresh_loader()
        seen = [b for e in range(stop_epoch) for b in epoch(killed, e)] + epoch(killed, stop_epoch, stop=stop_after)
        resumed = fresh_loader()
        resumed.load_state_dict(killed.state_dict())
        seen += epoch(resumed, stop_epoch) + (epoch(resumed, 1) if stop_epoch == 0 else [])
        assert len(seen) == len(expected) and all(torch.equal(a, b) for a, b in zip(seen, expected))
