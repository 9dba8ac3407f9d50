"""``python train.py model=<preset>`` trains on the preset's own data (conf/preset_data.yaml) unless data is chosen."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import CONF_DIR, compose_config, run_script
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


def leaves(node, prefix: str = "") -> dict[str, object]:
    """Dotted key -> value for every leaf of a config node."""
    if not OmegaConf.is_dict(node):
        return {prefix: OmegaConf.to_container(node) if OmegaConf.is_list(node) else node}
    return {k: v for key, child in node.items() for k, v in leaves(child, f"{prefix}.{key}" if prefix else key).items()}


def test_every_demo_file_is_named_after_a_preset_and_a_data_config():
    for demo in (CONF_DIR / "demo").glob("*.yaml"):
        pairs = [(demo.stem[:i], demo.stem[i + 1 :]) for i, char in enumerate(demo.stem) if char == "_"]
        assert any((CONF_DIR / "model" / f"{m}.yaml").is_file() and (CONF_DIR / "data" / f"{d}.yaml").is_file() for m, d in pairs), demo.name


@pytest.mark.parametrize(
    "model, other_data",
    [("rbm", "mnist"), ("srresnet", "sr_folder"), ("srgan", "sr_folder"), ("began", "celeba")],
)
def test_a_demo_budget_applies_to_its_preset_on_the_default_data_only(tmp_path: Path, model: str, other_data: str):
    data = OmegaConf.load(TABLE).get(model, "mnist5k")
    demo = leaves(OmegaConf.load(CONF_DIR / "demo" / f"{model}_{data}.yaml"))
    selected = lambda cfg: {key: leaves(OmegaConf.select(cfg, key)).get("") for key in demo}  # noqa: E731
    assert selected(compose_config(tmp_path, [f"model={model}", f"data={data}"])) == demo
    preset = selected(compose_config(tmp_path, [f"model={model}", f"data={data}", "~demo"]))
    assert all(preset[key] != value for key, value in demo.items()), preset  # every line of the demo changes something
    # real data keeps the preset's settings (paper settings, official budgets)
    assert selected(compose_config(tmp_path, [f"model={model}", f"data={other_data}"])) == selected(
        compose_config(tmp_path, [f"model={model}", f"data={other_data}", "~demo"])
    )
