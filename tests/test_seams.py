"""The seams conditional and translation models build on, exercised by two small models written here (not presets):

* a label-conditional GAN in a few lines (override draw_latent / generate / discriminate): labels reach the latent
  hook, both objectives and the penalties, and grids and metrics sample it with the datamodule's seeded labels;
* a translator whose ``condition`` is a source image: the source images flow from the datamodule's batches and
  conditions through SampleGrid and SampleMetrics, with no callback of its own.
"""

import functools
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from genlab import losses
from genlab.callbacks import SampleGrid, SampleMetrics
from genlab.data import MNIST5kDataModule, RingDataModule
from genlab.data.batch import Batch, conditions_for
from genlab.metrics import FrechetDistance, mnist_classifier
from genlab.models import AdversarialModule, GenerativeModule
from genlab.models.adversarial import Latent
from genlab.nets import ToyMLPDiscriminator, ToyMLPGenerator


def trainer(tmp_path: Path, callbacks=(), batches: int = 6) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=1, limit_train_batches=batches, accelerator="cpu", logger=False, callbacks=list(callbacks),
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )


# -- the data contract --------------------------------------------------------------------------------------------
def test_datamodules_yield_batches_and_seeded_conditions():
    dm = MNIST5kDataModule(batch_size=8)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, Batch) and batch.images.shape == (8, 1, 32, 32) and batch.labels.shape == (8,)
    a, b, c = (dm.conditions(50, "labels", seed) for seed in (0, 0, 1))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == (50,) and set(a.tolist()) <= set(range(10))
    assert dm.conditions(5, None) is None
    labels = torch.stack([dm.train_set[i][1] for i in range(len(dm.train_set))])
    drawn = dm.conditions(4000, "labels", 0)  # draws from the training labels: their class balance, roughly
    assert (torch.bincount(drawn, minlength=10).float() / 4000 - torch.bincount(labels).float() / len(labels)).abs().max() < 0.03


# -- a conditional GAN in a few lines -------------------------------------------------------------------------------
class ConditionalToyGAN(AdversarialModule):  # AdversarialModule has LabelConditioning's checks
    """cGAN-style: one-hot labels appended to z and to D's input. Records what reaches each hook."""

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.init_conditioning(True, num_classes)
        self.seen: dict[str, list[Tensor]] = {"draw_latent": [], "d_objective": [], "g_objective": [], "penalty": []}

    def draw_latent(self, n, labels=None, generator=None) -> Latent:
        self.seen["draw_latent"].append(labels)
        return Latent(self.randn(n, self.latent_dim - self.num_classes, generator=generator), self.sampling_labels(n, labels))

    def generate(self, latent, net=None):
        return (net or self.generator)(torch.cat([latent.z, F.one_hot(latent.labels, self.num_classes).float()], 1))

    def discriminate(self, samples, labels=None):
        if getattr(self, "in_penalty", False):
            self.seen["penalty"].append(labels)
        return self.discriminator(samples + 0.1 * F.one_hot(labels, self.num_classes).float()[:, :2])

    def sample(self, n, *, condition=None, generator=None):
        net = self.generator
        with torch.no_grad():
            return self.generate(self.draw_latent(n, condition, generator), net)

    def discriminator_objective(self, batch, fake, latent):
        self.seen["d_objective"].append((batch.labels, latent.labels))
        return super().discriminator_objective(batch, fake, latent)

    def generator_objective(self, batch, fake, latent):
        self.seen["g_objective"].append((batch.labels, latent.labels))
        return super().generator_objective(batch, fake, latent)


def test_labels_reach_the_latent_hook_the_objectives_and_the_penalties(tmp_path: Path):
    module_ref: list[ConditionalToyGAN] = []

    def recording_penalty(critic, real, fake):
        module = module_ref[0]
        module.in_penalty = True  # discriminate() records the labels it gets while the penalty evaluates the critic
        try:
            return losses.r1_penalty(critic, real, fake, weight=1.0)
        finally:
            module.in_penalty = False

    torch.manual_seed(0)
    module = ConditionalToyGAN(
        num_classes=8,
        generator=ToyMLPGenerator(latent_dim=2 + 8, dim=2, hidden=(16,)),
        discriminator=ToyMLPDiscriminator(dim=2, hidden=(16,), maxout_pieces=2),
        optimizer={p: functools.partial(torch.optim.Adam, lr=1e-3) for p in ("generator", "discriminator")},
        loss={"discriminator": losses.binary_cross_entropy_discriminator_loss, "generator": losses.non_saturating_generator_loss},
        penalties={"recording": recording_penalty},
    )
    module_ref.append(module)
    data = RingDataModule(num_points=600, batch_size=100)
    trainer(tmp_path).fit(module, datamodule=data)

    # every training draw got the real batch's labels, and the fakes carry them into both objectives and the penalty
    batch_labels = [labels for labels in module.seen["draw_latent"] if labels is not None]
    assert len(batch_labels) == 12  # 6 batches x (D step + G step)
    for real_labels, fake_labels in module.seen["d_objective"] + module.seen["g_objective"]:
        assert real_labels is not None and torch.equal(real_labels, fake_labels)
    assert len(module.seen["penalty"]) == 6 and all(labels is not None for labels in module.seen["penalty"])
    assert torch.equal(module.seen["penalty"][0], module.seen["d_objective"][0][0])

    # grids and metrics sample it with the datamodule's seeded labels
    module.seen["draw_latent"].clear()
    grid = SampleGrid(tmp_path / "grid", every_n_steps=None, num_samples=16, seed=3)
    trainer(tmp_path, [grid], batches=1).fit(module, datamodule=data)
    drawn = module.seen["draw_latent"][-1]
    assert torch.equal(drawn, data.conditions(16, "labels", seed=3)) and torch.equal(drawn, conditions_for(module, data, 16, 3))


# -- a translator: condition = source image ---------------------------------------------------------------------
class InvertedDigits(MNIST5kDataModule):
    """Translation data: source = the digit with its intensities inverted, target (images) = the digit."""

    def build_datasets(self):
        train, val = super().build_datasets()

        def with_source(subset):
            images, labels = subset.dataset.tensors
            index = torch.as_tensor(subset.indices)
            return TensorDataset(images[index], labels[index], -images[index])

        return with_source(train), with_source(val)


class ScaleTranslator(GenerativeModule):
    """translate(x) = scale * x with one learned scale, L2 to the target: it must learn scale = -1."""

    conditioning = "source"

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))

    def translate(self, source: Tensor) -> Tensor:
        return (self.scale * source).clamp(-1, 1)

    def sample(self, n, *, condition=None, generator=None):
        if condition is None or len(condition) != n:
            raise ValueError("ScaleTranslator needs n source images as condition=")
        with torch.no_grad():
            return self.translate(condition)

    def training_step(self, batch: Batch, batch_idx: int):
        return F.mse_loss(self.translate(batch.source), batch.images)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def test_source_images_flow_from_the_datamodule_through_grids_and_metrics(tmp_path: Path):
    data = InvertedDigits(batch_size=64)
    model = ScaleTranslator()
    fid = lambda: FrechetDistance(mnist_classifier(), feature="features", real_samples=1000)  # noqa: E731
    before = SampleMetrics({"fid": fid()}, every_n_steps=10_000, num_samples=300, batch_size=100)
    trainer(tmp_path, [before], batches=1).fit(model, datamodule=data)
    grid = SampleGrid(tmp_path / "grid", every_n_steps=None, num_samples=8, nrow=4, seed=0)
    after = SampleMetrics({"fid": fid()}, every_n_steps=10_000, num_samples=300, batch_size=100)
    trainer(tmp_path, [grid, after], batches=30).fit(model, datamodule=data)

    assert abs(model.scale.item() + 1) < 0.05  # it learned the inversion from batch.source -> batch.images
    fid_before, fid_after = before.history[-1]["fid"], after.history[-1]["fid"]
    assert fid_after < 0.2 * fid_before, (fid_before, fid_after)  # translations of held-out sources look like digits

    # the grid alternates rows of sources (the datamodule's seeded held-out conditions) and their translations
    sources = data.conditions(8, "source", seed=0)
    pixels = np.asarray(Image.open(grid.last_path).convert("L")).astype(np.float32) / 255 * 2 - 1
    cell = 32 + 2
    first_source = pixels[2 : 2 + 32, 2 : 2 + 32]
    first_output = pixels[2 + cell : 2 + cell + 32, 2 : 2 + 32]
    assert np.abs(first_source - sources[0, 0].numpy()).max() < 0.01
    assert np.abs(first_output - model.sample(1, condition=sources[:1])[0, 0].numpy()).max() < 0.01
    assert pixels.shape == (4 * cell + 2, 4 * cell + 2)  # 8 sources + 8 outputs, 4 per row
