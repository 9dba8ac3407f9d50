"""Latent-space tools: the interpolation math, interpolation grids (callback and ``eval.py mode=interpolate``) and
DCGAN's vector arithmetic (``eval.py mode=arithmetic``) with concepts from classes, the MNIST classifier and
CelebA's attributes."""

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from conftest import CONF_DIR, FAST, SMALL_DCGAN, compose_config
from genlab.arithmetic import arithmetic_rows, classify_pool, find_concepts
from genlab.callbacks import InterpolationGrid
from genlab.callbacks.interpolation import interpolation_images
from genlab.checkpoints import load_checkpoint
from genlab.data.batch import conditions_for
from genlab.evaluate import evaluate
from genlab.images import image_grid
from genlab.latent import METHODS, concept_arithmetic, interpolate, lerp, neighbourhood, slerp
from genlab.run import train
from test_data import write_celeba

SMALL_VAE = ["model.encoder.width=8"]
# the header line of the official list_attr_celeba.txt, trailing space included
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair "
    "Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male "
    "Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks "
    "Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young "
)


# -- the math ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_paths_start_and_end_at_the_endpoints(method: str):
    a, b = torch.randn(4, 16, generator=torch.Generator().manual_seed(0)), torch.randn(4, 16, generator=torch.Generator().manual_seed(1))
    path = interpolate(a, b, 7, method).view(4, 7, 16)
    assert torch.equal(path, {"linear": lerp, "spherical": slerp}[method](a, b, torch.linspace(0, 1, 7)))
    assert torch.allclose(path[:, 0], a, atol=1e-6) and torch.allclose(path[:, -1], b, atol=1e-6)
    assert not torch.allclose(path[:, 3], a, atol=1e-3) and not torch.allclose(path[:, 3], b, atol=1e-3)


def test_lerp_walks_the_chord_and_slerp_the_great_circle():
    a, b = torch.nn.functional.normalize(torch.randn(2, 3, 32, generator=torch.Generator().manual_seed(2)), dim=-1)
    t = torch.linspace(0, 1, 9)
    assert torch.allclose(lerp(a, b, t)[:, 4], (a + b) / 2)
    on_circle = slerp(a, b, t)
    assert torch.allclose(on_circle.norm(dim=-1), torch.ones(3, 9), atol=1e-5)  # unit vectors stay unit vectors
    assert torch.allclose(on_circle[:, 4], torch.nn.functional.normalize(a + b, dim=-1), atol=1e-5)  # the bisector
    # equal angles between successive points: constant speed along the arc
    steps = torch.arccos((on_circle[:, 1:] * on_circle[:, :-1]).sum(-1).clamp(-1, 1))
    assert torch.allclose(steps, steps[:, :1].expand_as(steps), atol=1e-4)
    assert (lerp(a, b, t)[:, 4].norm(dim=-1) < 0.95).all()  # the chord cuts inside the sphere: why slerp


def test_slerp_of_parallel_vectors_is_their_lerp():
    a = torch.randn(2, 8, generator=torch.Generator().manual_seed(3))
    t = torch.linspace(0, 1, 5)
    assert torch.allclose(slerp(a, 2 * a, t), lerp(a, 2 * a, t), atol=1e-6)
    assert torch.isfinite(slerp(a, -a, t)).all()


def test_interpolate_refuses_bad_settings():
    a = torch.zeros(2, 4)
    with pytest.raises(ValueError, match=r"choose from \['linear', 'spherical'\]"):
        interpolate(a, a, 5, "cubic")
    with pytest.raises(ValueError, match="at least 2 steps"):
        interpolate(a, a, 1, "linear")


def test_concept_arithmetic_and_its_neighbourhood():
    a, b, c = torch.tensor([[1.0, 0], [3, 0]]), torch.tensor([[0.0, 2]]), torch.tensor([[1.0, 1], [1, 3], [1, 2]])
    y = concept_arithmetic(a, b, c)
    assert torch.allclose(y, torch.tensor([3.0, 0.0]))  # (2, 0) - (0, 2) + (1, 2)
    around = neighbourhood(y, 50, 0.25, torch.Generator().manual_seed(0))
    assert around.shape == (50, 2) and (around - y).abs().max() <= 0.25 and (around - y).abs().max() > 0.2


# -- interpolation grids -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "preset",
    [["model=dcgan", *SMALL_DCGAN], ["model=vae", *SMALL_VAE], ["model=infogan", *SMALL_DCGAN, "model.code_head.hidden=8"]],
    ids=["dcgan", "vae", "infogan"],  # InfoGAN: its prior holds one-hot and uniform codes, not N(0, I)
)
@pytest.mark.parametrize("method", METHODS)
def test_interpolation_endpoints_decode_to_the_endpoint_samples(tmp_path: Path, preset: list[str], method: str):
    torch.manual_seed(0)
    model = instantiate(compose_config(tmp_path, preset).model)
    images = interpolation_images(model, None, pairs=3, steps=5, method=method, seed=4).view(3, 5, 1, 32, 32)
    samples = model.sample(6, generator=torch.Generator().manual_seed(4))  # the same seed: the same prior draws
    assert torch.allclose(images[:, 0], samples[:3], atol=1e-5) and torch.allclose(images[:, -1], samples[3:], atol=1e-5)
    assert not torch.allclose(images[:, 2], samples[:3], atol=1e-4)


def test_a_conditional_model_keeps_one_seeded_label_per_row(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=cvae", *SMALL_VAE])
    torch.manual_seed(0)
    model, datamodule = instantiate(cfg.model), instantiate(cfg.data)
    images = interpolation_images(model, datamodule, pairs=4, steps=3, method="spherical", seed=2).view(4, 3, 1, 32, 32)
    labels = conditions_for(model, datamodule, 4, seed=2)
    assert len(set(labels.tolist())) > 1  # the test can tell rows apart
    samples = model.sample(8, condition=labels.repeat(2), generator=torch.Generator().manual_seed(2))
    assert torch.allclose(images[:, 0], samples[:4], atol=1e-5) and torch.allclose(images[:, -1], samples[4:], atol=1e-5)


def test_the_callback_skips_models_without_a_latent(tmp_path: Path):
    pixelcnn = instantiate(compose_config(tmp_path, ["model=pixelcnn", "data=mnist5k_binary", "model.net.hidden=8", "model.net.blocks=1"]).model)
    dcgan = instantiate(compose_config(tmp_path, ["model=dcgan", *SMALL_DCGAN]).model)
    callback = InterpolationGrid(tmp_path / "interpolations")
    assert not callback.supports(pixelcnn) and callback.supports(dcgan)
    with pytest.raises(ValueError, match=r"methods must be a non-empty list from \['linear', 'spherical'\]"):
        InterpolationGrid(tmp_path, methods=["bezier"])


# -- from checkpoints of short real runs -------------------------------------------------------------------------
def short_run(tmp_path: Path, overrides: list[str]) -> Path:
    cfg = compose_config(tmp_path, [*overrides, *FAST, "logger=none"])
    train(cfg)
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    return run


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory) -> Path:
    """A real 6-batch DCGAN run with the default callbacks: .hydra/config.yaml, last.ckpt, its grids."""
    return short_run(tmp_path_factory.mktemp("dcgan"), ["model=dcgan", *SMALL_DCGAN])


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    # without the held-out IWAE bound over the whole validation split: 25 s of a 28 s run, and not tested here
    return short_run(tmp_path_factory.mktemp("vae"), ["model=vae", *SMALL_VAE, "~callbacks.held_out_likelihood"])


def eval_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("eval", overrides=list(overrides))


def png(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


def test_eval_interpolate_draws_the_callbacks_grids_from_the_checkpoint(dcgan_run: Path, tmp_path: Path):
    evaluate(eval_config("mode=interpolate", f"ckpt_path={dcgan_run / 'checkpoints' / 'last.ckpt'}", f"out_dir={tmp_path}"))
    grids = {}
    for method in METHODS:
        # the callback drew once, at the end of the only epoch (batch 6), with the same pairs, steps and seed
        (drawn,) = (dcgan_run / "interpolations").glob(f"{method}_step_*.png")
        assert drawn.name == f"{method}_step_000006.png"
        grids[method] = png(tmp_path / f"interpolation_{method}.png")
        assert grids[method].shape == (8 * 34 + 2, 10 * 34 + 2, 3)  # 8 pairs x 10 steps of 32 px, padding 2
        assert np.array_equal(grids[method], png(drawn))
    assert not np.array_equal(grids["linear"], grids["spherical"])


def test_eval_refuses_a_model_without_a_latent(tmp_path: Path):
    run = tmp_path / "pixelcnn"
    cfg = compose_config(run, ["model=pixelcnn", "data=mnist5k_binary", "model.net.hidden=8", "model.net.blocks=1"])
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    torch.save({"state_dict": instantiate(cfg.model).state_dict()}, run / "model.ckpt")
    located = [f"ckpt_path={run / 'model.ckpt'}", f"run_dir={run}", f"out_dir={tmp_path / 'out'}"]
    with pytest.raises(ValueError, match="mode=interpolate .* needs a model with decode"):
        evaluate(eval_config("mode=interpolate", *located))
    with pytest.raises(ValueError, match="mode=arithmetic .* needs a model with decode"):
        evaluate(eval_config("mode=arithmetic", *located, "arithmetic.a=1", "arithmetic.b=2", "arithmetic.c=3"))
    assert not (tmp_path / "out").exists()


def test_eval_arithmetic_on_a_gan_uses_the_digits_the_classifier_reads(dcgan_run: Path, tmp_path: Path):
    from genlab.checkpoints import load_model

    cfg = OmegaConf.load(dcgan_run / ".hydra" / "config.yaml")
    model, _ = load_model(cfg, dcgan_run / "checkpoints" / "last.ckpt", torch.device("cpu"))
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    read = classify_pool(model, datamodule, pool=200, seed=0)
    counts = torch.bincount(read.predicted, minlength=10)
    # a digit with enough samples but not the most common one, so the first samples of the pool are not all of it
    digit = min((d for d in range(10) if counts[d] >= 2), key=lambda d: int(counts[d]))
    rare = int(counts.argmin())

    concepts, source = find_concepts(model, datamodule, {"a": digit, "b": digit, "c": digit}, per_concept=2, pool=200)
    assert "MNIST classifier" in source
    ranked = (read.predicted == digit).nonzero().squeeze(1)
    ranked = ranked[read.probability[ranked, digit].argsort(descending=True)]
    assert torch.equal(concepts["a"].latents, read.latents[ranked[:2]])  # the two it is surest about

    ckpt = f"ckpt_path={dcgan_run / 'checkpoints' / 'last.ckpt'}"
    spec = [*(f"arithmetic.{role}={digit}" for role in "abc"), "arithmetic.pool=200", "arithmetic.per_concept=2"]
    evaluate(eval_config("mode=arithmetic", ckpt, f"out_dir={tmp_path}", *spec))
    images, width = arithmetic_rows(model, concepts, noise=0.25, seed=0)
    assert width == 3 and np.array_equal(png(tmp_path / "arithmetic.png"), image_grid(images, nrow=width))

    with pytest.raises(ValueError, match=rf"reads only {int(counts[rare])} of 200 samples as digit {rare}.*arithmetic.pool"):
        evaluate(eval_config("mode=arithmetic", ckpt, f"out_dir={tmp_path}", f"arithmetic.a={rare}", f"arithmetic.b={digit}",
                             f"arithmetic.c={digit}", "arithmetic.pool=200", f"arithmetic.per_concept={int(counts[rare]) + 1}"))
    with pytest.raises(ValueError, match=r"arithmetic.a=null \(not given\).*class ids 0\.\.9"):
        evaluate(eval_config("mode=arithmetic", ckpt, f"out_dir={tmp_path}"))


def test_eval_arithmetic_on_a_vae_averages_posterior_means_of_real_digits(vae_run: Path, tmp_path: Path):
    ckpt = vae_run / "checkpoints" / "last.ckpt"
    evaluate(eval_config("mode=arithmetic", f"ckpt_path={ckpt}", f"out_dir={tmp_path}", "arithmetic.a=7", "arithmetic.b=1", "arithmetic.c=4"))
    assert png(tmp_path / "arithmetic.png").shape == (4 * 34 + 2, 4 * 34 + 2, 3)  # 3 exemplars + their mean

    cfg = OmegaConf.load(vae_run / ".hydra" / "config.yaml")
    model = instantiate(cfg.model)
    model.load_state_dict(load_checkpoint(ckpt)["state_dict"])
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    concepts, source = find_concepts(model, datamodule, {"a": 7, "b": 7, "c": 4}, per_concept=3)
    assert "posterior means" in source
    assert all(int(label) == 7 for label in _labels_of(datamodule, concepts["a"].exemplars))
    assert torch.allclose(concepts["a"].latents, model.encode(concepts["a"].exemplars)[0], atol=1e-5)
    # a - a + c = c: the result is c's mean latent decoded
    images, width = arithmetic_rows(model, concepts, noise=0.0)
    rows = images.view(4, width, 1, 32, 32)
    assert torch.allclose(rows[3, 0], rows[2, -1], atol=1e-5) and (rows[3, 1:] == -1).all()


def _labels_of(datamodule, images: torch.Tensor) -> list[int]:
    """The training labels of ``images``, found by exact match in the training split."""
    pool = torch.stack([datamodule.train_set[i][0] for i in range(len(datamodule.train_set))])
    found = []
    for image in images:
        (index,) = (pool == image).flatten(1).all(1).nonzero().squeeze(1).tolist()
        found.append(int(datamodule.train_set[index][1]))
    return found


def test_arithmetic_on_a_conditional_model_decodes_each_concepts_class(tmp_path: Path):
    torch.manual_seed(0)
    cfg = compose_config(tmp_path, ["model=cvae", *SMALL_VAE])
    model = instantiate(cfg.model)
    concepts, _ = find_concepts(model, None, {"a": 3, "b": 5, "c": 8}, per_concept=2)
    assert [concepts[r].label for r in "abc"] == [3, 5, 8]
    labels = torch.full((2,), 5)
    assert torch.allclose(concepts["b"].exemplars, model.decode(concepts["b"].latents, labels), atol=1e-5)
    images, width = arithmetic_rows(model, concepts, noise=0.0)
    y = concepts["a"].latents.mean(0) - concepts["b"].latents.mean(0) + concepts["c"].latents.mean(0)
    assert torch.allclose(images.view(4, width, 1, 32, 32)[3, 0], model.decode(y[None], torch.tensor([8]))[0], atol=1e-5)
    same, _ = find_concepts(model, None, {"a": 3, "b": 3, "c": 8}, per_concept=2)  # a - a + c = c, exactly
    assert torch.equal(concept_arithmetic(*(same[r].latents for r in "abc")), concepts["c"].latents.mean(0))
    with pytest.raises(ValueError, match=r"arithmetic.c=12: the concepts here are the classes of the model, class ids 0\.\.9"):
        find_concepts(model, None, {"a": 3, "b": 5, "c": 12})


# -- CelebA's attributes ---------------------------------------------------------------------------------------------
# Smiling and Male per image; every other attribute -1. Partition: images 1-4 train, 5-6 valid, 7-8 test.
SMILING_MALE = [(1, -1), (-1, -1), (-1, 1), (1, 1), (1, -1), (-1, 1), (1, 1), (-1, -1)]


def write_celeba_attributes(root: Path) -> None:
    """The images of test_data.write_celeba (image i is flat grey 30 * i) with a list_attr_celeba.txt in the
    official layout: count, the header with its trailing space, values padded to two characters."""
    write_celeba(root)
    names = CELEBA_ATTRIBUTES.split()
    rows = []
    for i, (smiling, male) in enumerate(SMILING_MALE):
        values = [-1] * len(names)
        values[names.index("Smiling")], values[names.index("Male")] = smiling, male
        rows.append(f"{i + 1:06d}.jpg " + " ".join(f"{v:2d}" for v in values))
    (root / "celeba" / "list_attr_celeba.txt").write_text(f"{len(rows)}\n{CELEBA_ATTRIBUTES}\n" + "\n".join(rows) + "\n")


@pytest.fixture
def celeba(tmp_path: Path):
    write_celeba_attributes(tmp_path / "data")
    with mock.patch("torchvision.datasets.celeba.check_integrity", return_value=True):  # only the MD5 check
        def make(*model: str):
            cfg = compose_config(tmp_path, [*model, "data=celeba", f"data.root={tmp_path / 'data'}", "data.num_workers=0"])
            datamodule = instantiate(cfg.data)
            datamodule.setup("fit")
            return instantiate(cfg.model), datamodule

        yield make


def test_celeba_exposes_its_attribute_table(celeba):
    _, datamodule = celeba("model=vae")
    table = datamodule.attribute_table()
    assert table.names == CELEBA_ATTRIBUTES.split() and table.values.shape == (4, 40)
    assert table.matching(["Smiling", "-Male"]).tolist() == [True, False, False, False]
    assert table.matching(["smiling"]).tolist() == [True, False, False, True]  # names match case-insensitively
    assert table.matching(["Male"]).tolist() == [False, False, True, True]
    assert datamodule.attribute_table(train=False).matching(["Smiling"]).tolist() == [True, False]
    assert int(table.values.sum()) == 4  # every other attribute is -1
    with pytest.raises(ValueError, match=r"'Smiley' is not a CelebA attribute; choose from \['5_o_Clock_Shadow'.*'Young'\]"):
        table.matching(["Smiley"])


def test_a_vae_on_celeba_finds_concepts_through_its_encoder(celeba):
    model, datamodule = celeba("model=vae", "model.likelihood=gaussian", *SMALL_VAE)
    specs = {"a": ["Smiling", "-Male"], "b": ["-Smiling", "-Male"], "c": ["-Smiling", "Male"]}
    concepts, _ = find_concepts(model, datamodule, specs, per_concept=1)
    for role, grey in zip("abc", (0, 30, 60)):  # the train images with those attributes: 000001, 000002, 000003
        assert torch.allclose(concepts[role].exemplars, torch.full((1, 3, 64, 64), grey / 127.5 - 1), atol=0.03), role
    images, width = arithmetic_rows(model, concepts)
    assert images.shape == (4 * width, 3, 64, 64) and width == 2
    with pytest.raises(ValueError, match=r"arithmetic.a=\[Smiling,-Male\]: only 1 training images .* 2 needed"):
        find_concepts(model, datamodule, specs, per_concept=2)
    with pytest.raises(ValueError, match="'Smiley' is not a CelebA attribute"):
        find_concepts(model, datamodule, {**specs, "b": "Smiley"}, per_concept=1)
    with pytest.raises(ValueError, match=r"arithmetic.c=7: the concepts here are CelebA attributes.*choose from \['5_o_Clock"):
        find_concepts(model, datamodule, {**specs, "c": 7}, per_concept=1)


def test_a_gan_on_celeba_is_told_what_it_needs(celeba):
    model, datamodule = celeba("model=dcgan", *SMALL_DCGAN)
    with pytest.raises(ValueError, match=r"no encoder.*no classifier for CelebA's attributes.*model=vae data=celeba"):
        find_concepts(model, datamodule, {"a": "Smiling", "b": "Male", "c": "Young"})
