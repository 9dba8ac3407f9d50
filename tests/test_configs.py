"""Every model config composes with every image datamodule and instantiates; bad choices fail loudly."""

from pathlib import Path

import pytest
import torch
import yaml
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from conftest import CONF_DIR, compose_config
from genlab.run import check_model_fits_data

MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
IMAGE_DATA = ["mnist5k", "mnist", "fashion_mnist", "cifar10", "celeba", "folder"]
POINT_DATA = ["ring8", "grid25"]


@pytest.mark.parametrize("data", IMAGE_DATA)
@pytest.mark.parametrize("model", [m for m in MODELS if m in ("gan", "dcgan")])
def test_model_and_data_compose_and_instantiate(tmp_path: Path, model: str, data: str):
    root = [] if data == "mnist5k" else [f"data.root={tmp_path}"]  # mnist5k ships inside a wheel: no root
    cfg = compose_config(tmp_path, [f"model={model}", f"data={data}", *root])
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model)
    assert (datamodule.channels, datamodule.image_size) == (cfg.data.channels, cfg.data.image_size)
    images = module.sample(2)
    assert images.shape == (2, datamodule.channels, datamodule.image_size, datamodule.image_size)


@pytest.mark.parametrize("data", POINT_DATA)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_composes_with_point_data_and_fits_or_names_the_presets_that_fit(tmp_path: Path, model: str, data: str):
    cfg = compose_config(tmp_path, [f"model={model}", f"data={data}"])  # never a Hydra composition error
    try:
        check_model_fits_data(cfg)
    except ValueError as err:
        # translators ask for translation data (sources); every other misfit names the presets for points
        assert ("Presets with nets for point data: toy_gan, wgan, wgan_gp, lsgan, hinge_gan" in str(err)
                or "needs translation data with source images" in str(err)), str(err)
    else:
        assert instantiate(cfg.model).sample(2).shape == (2, cfg.data.dim)


def test_data_configs_declare_their_kind_and_override_no_other_group():
    for path in sorted((CONF_DIR / "data").glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text()).get("defaults", []):
            key = entry if isinstance(entry, str) else next(iter(entry))
            assert key in ("_self_", "kind"), f"conf/data/{path.name}: '{entry}' reaches outside the data's own kind"


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")))
def test_experiments_compose(tmp_path: Path, experiment: str):
    cfg = compose_config(tmp_path, [f"experiment={experiment}"])
    shape = (cfg.data.dim,) if "dim" in cfg.data else (cfg.data.channels, cfg.data.image_size, cfg.data.image_size)
    assert instantiate(cfg.model).sample(1).shape[1:] == shape


def test_dcgan_celeba64_has_paper_settings(tmp_path: Path):
    cfg = compose_config(tmp_path, ["experiment=dcgan_celeba64"])
    assert cfg.data.batch_size == 128 and cfg.data.image_size == 64
    for opt in (cfg.model.optimizer.generator, cfg.model.optimizer.discriminator):
        assert opt._target_ == "torch.optim.Adam" and opt.lr == 2e-4 and list(opt.betas) == [0.5, 0.999]
    module = instantiate(cfg.model)
    conv = next(m for m in module.generator.modules() if isinstance(m, torch.nn.ConvTranspose2d))
    assert abs(conv.weight.std().item() - 0.02) < 0.002  # N(0, 0.02) init


def test_unknown_model_lists_the_options(tmp_path: Path):
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(tmp_path, ["model=dcgann"])
    message = str(err.value)
    assert "dcgann" in message and "dcgan" in message.replace("dcgann", "") and "gan" in message


def test_unknown_data_lists_the_options(tmp_path: Path):
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(tmp_path, ["data=celebA"])
    assert "celeba" in str(err.value) and "mnist5k" in str(err.value)


def test_folder_data_requires_a_root(tmp_path: Path):
    cfg = compose_config(tmp_path, ["data=folder"])
    with pytest.raises(Exception, match="data.root"):
        instantiate(cfg.data)


def test_dcgan_rejects_image_sizes_it_cannot_build(tmp_path: Path):
    cfg = compose_config(tmp_path, ["data.image_size=28"])
    with pytest.raises(Exception, match="image_size"):
        instantiate(cfg.model)


@pytest.mark.parametrize("loggers", ["[wandb,csv]", "[csv,tensorboard]"])
def test_several_loggers_at_once(tmp_path: Path, loggers: str):
    from genlab.run import instantiate_dict

    cfg = compose_config(tmp_path, [f"logger={loggers}"])
    assert len(instantiate_dict(cfg.logger)) == 2
