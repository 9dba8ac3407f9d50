"""``python train.py model=<preset>`` trains on the preset's own data (conf/preset_data.yaml) unless data is chosen."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import CONF_DIR, run_script
from genlab.preset_data import with_preset_data

TABLE = CONF_DIR / "preset_data.yaml"


def test_every_entry_names_a_preset_and_a_data_config():
    for preset, data in OmegaConf.load(TABLE).items():
        assert (CONF_DIR / "model" / f"{preset}.yaml").is_file(), preset
        assert (CONF_DIR / "data" / f"{data}.yaml").is_file(), (preset, data)


@pytest.mark.parametrize(
    "argv, added",
    [
        (["model=stargan"], ["data=mnist_domains"]),
        (["model=cyclegan", "--cfg", "job"], ["data=mnist_thin2thick"]),
        (["+model=toy_gan"], ["data=ring8"]),
        (["model=dcgan"], []),  # trains on the default data
        (["model=stargan", "data=celeba_domains"], []),  # an explicit choice wins
        (["model=srgan", "experiment=dcgan_mnist"], []),  # the experiment picks its data
        (["-m", "model=stargan,cyclegan"], []),  # a sweep over presets keeps one data choice
        (["trainer.max_epochs=1"], []),
    ],
)
def test_the_preset_data_is_added_only_when_nothing_else_chooses_data(argv: list[str], added: list[str]):
    model = next((i for i, arg in enumerate(argv) if arg.lstrip("+").startswith("model=")), len(argv) - 1)
    assert with_preset_data(argv, TABLE) == [*argv[: model + 1], *added, *argv[model + 1 :]]  # right after model=


def test_train_py_composes_the_preset_with_its_data(tmp_path: Path):
    result = run_script("train.py", ["model=cyclegan", "--cfg", "job"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    data = OmegaConf.create(result.stdout).data
    assert data._target_ == "genlab.data.MNISTThin2ThickDataModule"
