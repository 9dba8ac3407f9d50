"""The embedded translation demos train in CPU minutes (conf/demo/<model>_<data>.yaml, picked by conf/train.yaml for
that pair), while the same presets on real data keep the official budgets and settings."""

from pathlib import Path

import pytest

from conftest import CONF_DIR, compose_config
from genlab.preset_data import with_preset_data

OFFICIAL_EPOCHS = 10  # conf/trainer/default.yaml


def composed(tmp_path: Path, *argv: str):
    """The config ``python train.py *argv`` runs with (preset data added as train.py adds it)."""
    return compose_config(tmp_path, with_preset_data(list(argv), CONF_DIR / "preset_data.yaml"))


@pytest.mark.parametrize("preset, batches_per_epoch, demo_batches", [
    ("pix2pix", 4000 // 16, 1000),  # mnist_edges2digits: 4000 training pairs
    ("cyclegan", 2000 // 16, 375),  # mnist_thin2thick: 2000 A digits
])
def test_the_one_way_demos_train_a_few_epochs_and_real_data_the_official_budget(
    tmp_path: Path, preset: str, batches_per_epoch: int, demo_batches: int
):
    demo = composed(tmp_path, f"model={preset}")
    assert demo.trainer.max_epochs * batches_per_epoch == demo_batches
    real = "data=paired" if preset == "pix2pix" else "data=unpaired"
    assert composed(tmp_path, f"model={preset}", real, "data.root=DIR").trainer.max_epochs == OFFICIAL_EPOCHS
    assert composed(tmp_path, f"model={preset}", "~demo").trainer.max_epochs == OFFICIAL_EPOCHS
    assert composed(tmp_path, f"model={preset}", "trainer.max_epochs=7").trainer.max_epochs == 7  # the command line wins


def test_the_stargan_demo_uses_its_cpu_recipe_and_celeba_the_papers_settings(tmp_path: Path):
    demo = composed(tmp_path, "model=stargan")
    assert demo.data._target_.endswith("MNISTDomainsDataModule")
    assert demo.model.n_critic == 1 and demo.max_batches == 600
    celeba = composed(tmp_path, "model=stargan", "data=celeba_domains", "data.root=DIR")
    assert (celeba.model.n_critic, celeba.model.lambda_rec, celeba.max_batches) == (5, 10.0, None)
    assert celeba.model.optimizer.generator.lr == celeba.model.optimizer.discriminator.lr == 1e-4
    preset = composed(tmp_path, "model=stargan", "~demo")  # the preset as the paper sets it, on the demo data
    assert (preset.model.n_critic, preset.model.optimizer.generator.lr, preset.max_batches) == (5, 1e-4, None)
