"""Every preset in conf/model/, the way a user runs it: its intended data, the default logger (W&B, offline because
there is no login; not ``disabled``), the default callbacks and the default metrics, for a few batches. A new preset
joins the matrix by existing (on MNIST-5k unless ``DATA`` says otherwise); ``SHRINK`` only makes nets smaller.

Also the one sampling contract, over every preset: shape, range, determinism under a seed, conditions."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from conftest import CONF_DIR, SMALL_DCGAN, SMALL_GAN, compose_config
from genlab.checkpoints import load_checkpoint
from genlab.data.batch import conditions_for
from genlab.run import train

PRESETS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
# binarised digits at 28x28 (at 14x14 the MNIST classifier misreads too many for the sample metrics to run)
SMALL_AR = ["callbacks.sample_grid.num_samples=4", "callbacks.completion_grid.num_images=2"]
DATA = {  # presets made for other data than the default MNIST-5k digits
    "toy_gan": ["data=ring8", "data.num_points=2000"],
    **{name: ["data=mnist5k_binary", *SMALL_AR] for name in ("pixelcnn", "gated_pixelcnn", "cpixelcnn", "pixelrnn", "rowlstm")},
    "stargan": ["data=mnist_domains"],
    "cyclegan": ["data=mnist_thin2thick"],
    "pix2pix": ["data=mnist_edges2digits"],
    **{name: ["data=mnist5k_sr"] for name in ("srresnet", "srgan")},
    "rbm": ["data=mnist5k_binary"],
}
SHRINK = {
    **{name: SMALL_DCGAN for name in ("dcgan", "lsgan", "hinge_gan", "wgan", "wgan_gp")},
    "gan": SMALL_GAN,
    "cgan": SMALL_GAN,
    **{name: SMALL_DCGAN for name in ("cdcgan", "acgan", "projection_gan")},
    "infogan": [*SMALL_DCGAN, "model.code_head.hidden=8"],
    "ssgan": ["model.generator.hidden=[32]", "model.discriminator.hidden=[32,16]"],
    "toy_gan": ["model.generator.hidden=[16,16]", "model.discriminator.hidden=[16,16]"],
    "vae": ["model.encoder.width=8"],
    "cvae": ["model.encoder.width=8"],
    **{name: ["model.net.hidden=8", "model.net.blocks=1"] for name in ("pixelcnn", "gated_pixelcnn", "cpixelcnn")},
    "pixelrnn": ["model.net.hidden=16"],
    "rowlstm": ["model.net.hidden=8", "model.net.layers=1"],
    "stargan": ["model.generator.conv_dim=8", "model.generator.repeat_num=1", "model.discriminator.conv_dim=8"],
    "cyclegan": ["model.generator_ab.width=4", "model.generator_ab.n_blocks=1", "model.discriminator_a.width=8"],
    "pix2pix": ["model.generator.width=8", "model.discriminator.width=8"],
    "srresnet": ["model.generator.width=8", "model.generator.blocks=1"],
    "srgan": ["model.generator.width=8", "model.generator.blocks=1", "model.discriminator.width=4", "model.discriminator.dense=16"],
    "began": ["model.generator.width=4"],
    "rbm": ["model.hidden_units=16", "model.sample_steps=20", "callbacks.chain_grid.steps=[1,5,20]"],
}
# What each capability writes: the callback's folder, and the W&B image key it logs.
PICTURES = {
    "samples": "samples/grid",
    "traversals": "traversal",
    "reconstructions": "reconstructions/grid",
    "completions": "completion/grid",
    "class_grids": "samples/class_grid",
    "codes": "codes/continuous",
    "interpolations": "interpolation/",
    "chains": "samples/chains",
    "filters": "filters/grid",
}
# Presets whose condition= fixes an unsupervised code, not a class: they declare conditioning None, so grids and
# metrics pass them no data labels, yet sample(n, condition=...) is honoured (InfoGAN's categorical code).
CODE_CONDITIONED = {"infogan"}


def preset_overrides(name: str) -> list[str]:
    return [f"model={name}", *DATA.get(name, []), *SHRINK.get(name, [])]


def user_run(tmp_path: Path, name: str) -> list[str]:
    """The defaults a user gets, shrunk in time only: 4 batches, one sample grid, metrics once at the end."""
    return [
        *preset_overrides(name),
        "trainer.max_epochs=1",
        "++trainer.limit_train_batches=4",
        "trainer.accelerator=cpu",
        "print_config=false",
        "callbacks.sample_metrics.num_samples=200",
        "callbacks.sample_metrics.batch_size=100",
    ]


def test_every_preset_is_in_the_matrix():
    assert {"dcgan", "vae", "cvae", "pixelcnn", "toy_gan"} <= set(PRESETS)
    assert set(DATA) | set(SHRINK) <= set(PRESETS), "the maps name presets that no longer exist"


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_preset_trains_on_the_defaults_a_user_gets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, name: str):
    for key in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no W&B login: the default logger goes offline by itself
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))
    cfg = compose_config(tmp_path, user_run(tmp_path, name))
    assert list(cfg.logger) == ["wandb"] and "sample_grid" in cfg.callbacks  # the defaults, not a test logger
    metrics = train(cfg)

    run = tmp_path / "run"
    model = instantiate(cfg.model)
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")  # weights_only=True
    model.load_state_dict(checkpoint["state_dict"])
    assert checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"] == 4
    assert all(torch.isfinite(torch.tensor(v)) for k, v in metrics.items() if k.startswith(("loss", "train")))

    (wandb_run,) = (run / "wandb").glob("offline-run-*")
    media = [p.relative_to(wandb_run / "files" / "media" / "images").as_posix() for p in (wandb_run / "files" / "media" / "images").rglob("*.png")]
    expected = {"samples"}
    if callable(getattr(model, "decode", None)):
        expected |= {"traversals"}
        if "dim" not in cfg.data:  # image data: 2-D points make no interpolation grid
            expected |= {"interpolations"}
    if callable(getattr(model, "reconstruct", None)):
        expected |= {"reconstructions"}
    if callable(getattr(model, "complete", None)):
        expected |= {"completions"}
    if model.conditioning == "labels" and callable(getattr(model, "decode", None)):
        expected |= {"class_grids"}
    if callable(getattr(model, "sweep_code", None)):
        expected |= {"codes"}
    if callable(getattr(model, "gibbs_chain", None)):
        expected |= {"chains"}
    if callable(getattr(model, "filters", None)):
        expected |= {"filters"}
    for folder in expected:
        assert list((run / folder).glob("*.png")), f"{name}: no {folder} PNG"
        assert any(m.startswith(PICTURES[folder]) for m in media), f"{name}: {PICTURES[folder]} never reached W&B ({media})"
    for folder in set(PICTURES) - expected:
        assert not (run / folder).exists(), f"{name} has no capability for {folder} but wrote it"

    grey_digits = name != "toy_gan" and cfg.data.get("channels") == 1  # metrics=default skips colour data (mnist_domains)
    if "sample_metrics" in cfg.callbacks and cfg.get("metrics") and grey_digits:  # digits: the classifier metrics
        assert 0 <= metrics["metrics/fid"] < 1e4 and 0 <= metrics["metrics/classes_covered"] <= 10
        assert (0 <= metrics["metrics/cond_acc"] <= 1) if model.conditioning == "labels" else "metrics/cond_acc" not in metrics
    # the models' own readings of held-out digits (InfoGAN's code, the SSGAN's classifier), and only theirs
    for key, capability in (("metrics/infogan_code_accuracy", "categorical_code"), ("metrics/classifier_error", "classify")):
        assert (0 <= metrics[key] <= 1) if callable(getattr(model, capability, None)) else key not in metrics, (name, key)
    out = capsys.readouterr().out
    assert "done" in out and str(run / "checkpoints") in out.replace("\n", "")


# -- the sampling contract ---------------------------------------------------------------------------------------
# Translators (conditioning "source" or "domain_transfer") map the datamodule's held-out conditions; everything else
# samples from noise, with labels for class-conditional models.
TRANSLATING = ("source", "domain_transfer")


@pytest.fixture(params=PRESETS)
def preset(request, tmp_path: Path):
    cfg = compose_config(tmp_path, preset_overrides(request.param))
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    datamodule = instantiate(cfg.data)
    if hasattr(model, "coding"):  # autoregressive models read their pixel coding (e.g. a palette) from the data
        datamodule.setup("fit")
        model.coding.adapt(datamodule)
    return request.param, model, cfg, datamodule


def expected_shape(cfg, n: int) -> tuple[int, ...]:
    if "dim" in cfg.data:
        return (n, cfg.data.dim)
    return (n, cfg.data.channels, cfg.data.image_size, cfg.data.image_size)


def sampling_condition(model, datamodule, n: int, seed: int = 0):
    """What a grid would pass: the datamodule's seeded held-out sources for translators, nothing for the others."""
    return conditions_for(model, datamodule, n, seed) if model.conditioning in TRANSLATING else None


def test_samples_have_the_data_shape_and_range(preset):
    name, model, cfg, datamodule = preset
    samples = model.sample(3, condition=sampling_condition(model, datamodule, 3), generator=torch.Generator().manual_seed(1))
    assert samples.shape == expected_shape(cfg, 3), name
    if samples.dim() == 4:
        assert samples.min() >= -1 and samples.max() <= 1
    assert not samples.requires_grad


def test_a_seed_fixes_the_samples(preset):
    name, model, _, datamodule = preset
    condition = sampling_condition(model, datamodule, 3)
    a = model.sample(3, condition=condition, generator=torch.Generator().manual_seed(7))
    b = model.sample(3, condition=condition, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b), name
    if model.conditioning in TRANSLATING:  # translation is deterministic: other sources, other outputs
        assert not torch.equal(a, model.sample(3, condition=sampling_condition(model, datamodule, 3, seed=1))), name
    else:
        assert not torch.equal(a, model.sample(3, condition=condition, generator=torch.Generator().manual_seed(8))), name


def test_sampling_leaves_the_model_state_and_mode_untouched(preset):
    # Sampling mid-training (grids, metrics) must not move BatchNorm statistics or switch train/eval mode.
    _, model, _, datamodule = preset
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.sample(4, condition=sampling_condition(model, datamodule, 4))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(m.training for m in model.modules())


def test_conditions_are_refused_or_honoured_as_the_model_declares(preset):
    name, model, _, datamodule = preset
    labels = torch.tensor([1, 7])
    if model.conditioning in TRANSLATING:  # a translator needs its sources and names them when they are missing
        with pytest.raises(ValueError, match="condition="):
            model.sample(2)
        with pytest.raises(ValueError, match="condition="):
            model.sample(2, condition=labels)
        return
    if model.conditioning is None and name not in CODE_CONDITIONED:
        with pytest.raises(ValueError, match="unconditional"):
            model.sample(2, condition=labels)
        return
    assert model.conditioning == ("labels" if name not in CODE_CONDITIONED else None)
    seed = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    same = model.sample(2, condition=labels, generator=seed())
    assert torch.equal(same, model.sample(2, condition=labels, generator=seed()))
    assert not torch.equal(same, model.sample(2, condition=torch.tensor([4, 2]), generator=seed())), name
    with pytest.raises(ValueError, match=r"in 0\.\.9"):  # the allowed range, named in the message
        model.sample(2, condition=torch.tensor([1, 10]))
