"""The GAN family as configs: presets with their papers' settings, penalties, weight clipping, the improved-GAN
switches and generator EMA, each checked on real modules (and short real training runs where it matters)."""

import functools
import math
import re
from pathlib import Path

import pytest
import torch
import yaml
from hydra.errors import ConfigCompositionException
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from conftest import CONF_DIR, FAST, FAST_TRAINER, SMALL_DCGAN, compose_config, fit_bare, run_script
from genlab import losses
from genlab.data.batch import Batch
from genlab.models import AdversarialModule
from genlab.models.adversarial import Latent
from genlab.models.averaging import ParameterAverage
from genlab.nets import (
    BEGANDecoder,
    BEGANDiscriminator,
    DCGANDiscriminator,
    DCGANGenerator,
    MinibatchDiscrimination,
    MLPDiscriminator,
    MLPGenerator,
    NoisyMLPDiscriminator,
    ToyMLPDiscriminator,
    ToyMLPGenerator,
)
from genlab.nets.progan import ProGANDiscriminator, ProGANGenerator
from genlab.run import check_model_fits_data, train

LOSS_PRESETS = ["wgan", "wgan_gp", "lsgan", "hinge_gan"]  # named after a loss: nets for images and for points
DCGAN_NETS, MLP_NETS = (DCGANGenerator, DCGANDiscriminator), (MLPGenerator, MLPDiscriminator)
TOY_NETS = (ToyMLPGenerator, ToyMLPDiscriminator)
# The nets each adversarial preset lists per data kind (conf/model/<preset>.yaml); a kind left out: no nets for it.
NETS = {
    "gan": {"images": MLP_NETS},
    "dcgan": {"images": DCGAN_NETS},
    "toy_gan": {"points": TOY_NETS},
    "cgan": {"images": MLP_NETS},  # class-conditional presets (model/conditioning): their nets with num_classes
    **{preset: {"images": DCGAN_NETS} for preset in ("cdcgan", "acgan", "projection_gan")},
    "infogan": {"images": DCGAN_NETS},  # the Q head is added by the scheme, on the discriminator's features
    "ssgan": {"images": (MLPGenerator, NoisyMLPDiscriminator)},
    "began": {"images": (BEGANDecoder, BEGANDiscriminator)},
    "progan": {"images": (ProGANGenerator, ProGANDiscriminator)},
    **{preset: {"images": DCGAN_NETS, "points": TOY_NETS} for preset in LOSS_PRESETS},
}
KIND = {"mnist5k": "images", "cifar10": "images", "ring8": "points", "grid25": "points"}
# conf/model/nets/toy_mlp/points.yaml resolved on 2-D points: the PacGAN nets that data=ring8/grid25 always trained.
TOY_MLP_NETS = {
    "generator": {"_target_": "genlab.nets.ToyMLPGenerator", "latent_dim": 2, "dim": 2, "hidden": [400] * 4,
                  "batch_norm": True},
    "discriminator": {"_target_": "genlab.nets.ToyMLPDiscriminator", "dim": 2, "hidden": [200] * 3, "maxout_pieces": 5,
                      "minibatch_discrimination": 0, "pack": 1},
}
TINY_TOY = ["model.generator.hidden=[16,16]", "model.discriminator.hidden=[16,16]", "data.num_points=1000"]


def d_loss(module: AdversarialModule, real: torch.Tensor, fake: torch.Tensor):
    """The discriminator objective on a real batch and fakes (the latent is not read by unconditional schemes)."""
    return module.discriminator_objective(Batch(real), fake, Latent(torch.zeros(len(fake), module.latent_dim)))


def g_loss(module: AdversarialModule, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return module.generator_objective(Batch(real), fake, Latent(torch.zeros(len(fake), module.latent_dim)))[0]


def toy_module(**switches) -> AdversarialModule:
    torch.manual_seed(0)
    return AdversarialModule(
        generator=ToyMLPGenerator(latent_dim=2, dim=2, hidden=(8, 8)),
        discriminator=ToyMLPDiscriminator(dim=2, hidden=(8, 8), maxout_pieces=2),
        optimizer={"generator": functools.partial(torch.optim.Adam, lr=1e-3),
                   "discriminator": functools.partial(torch.optim.Adam, lr=1e-3)},
        loss={"discriminator": losses.binary_cross_entropy_discriminator_loss, "generator": losses.non_saturating_generator_loss},
        **switches,
    )


# --- presets ---------------------------------------------------------------------------------------------------


def test_the_nets_table_covers_every_adversarial_preset(tmp_path: Path):
    def scheme(preset: str) -> type:
        return get_class(compose_config(tmp_path, [f"model={preset}"]).model._target_)

    adversarial = [p.stem for p in sorted((CONF_DIR / "model").glob("*.yaml")) if issubclass(scheme(p.stem), AdversarialModule)]
    assert sorted(NETS) == sorted(adversarial)  # a new preset must say here which nets it lists per data kind


@pytest.mark.parametrize("data", sorted(KIND))
@pytest.mark.parametrize("model", sorted(NETS))
def test_each_preset_builds_the_nets_it_lists_for_the_data_kind(tmp_path: Path, model: str, data: str):
    cfg = compose_config(tmp_path, [f"model={model}", f"data={data}"])  # composes on any data: no Hydra error
    expected = NETS[model].get(KIND[data])
    if expected is None:  # no nets for this kind: none composed, and the run stops before building anything
        # (model/conditioning adds num_classes to the nets nodes, so a conditional preset has nodes without _target_)
        assert "_target_" not in cfg.model.get("generator", {}) and "_target_" not in cfg.model.get("discriminator", {})
        with pytest.raises(ValueError, match="has no nets for"):
            check_model_fits_data(cfg)
        return
    check_model_fits_data(cfg)
    generator, discriminator = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    assert (type(generator), type(discriminator)) == expected
    if KIND[data] == "points":  # exactly the PacGAN nets, whatever the preset uses on images
        assert {name: OmegaConf.to_container(cfg.model[name], resolve=True) for name in TOY_MLP_NETS} == TOY_MLP_NETS
        assert generator(torch.randn(3, 2)).shape == (3, 2)
    else:
        labels = torch.zeros(2, dtype=torch.long)  # read by the conditional presets' nets, ignored by the others
        assert discriminator(torch.zeros(2, cfg.data.channels, 32, 32), labels).shape[0] == 2


@pytest.mark.parametrize("model", LOSS_PRESETS)
def test_loss_presets_sample_images_on_images_and_points_on_points(tmp_path: Path, model: str):
    images = instantiate(compose_config(tmp_path, [f"model={model}", *SMALL_DCGAN]).model)
    assert images.sample(2).shape == (2, 1, 32, 32)
    for data in ("ring8", "grid25"):
        points = instantiate(compose_config(tmp_path, [f"model={model}", f"data={data}"]).model)
        assert isinstance(points.generator, ToyMLPGenerator) and isinstance(points.discriminator, ToyMLPDiscriminator)
        assert points.sample(3).shape == (3, 2)


def test_presets_spell_their_nets_per_kind_alike_and_point_data_declares_only_its_kind():
    """One spelling in every preset (so no preset works on points by accident of spelling), and the point data
    configs reach into no other config group."""
    line = re.compile(r"^optional nets/(\w+)@_here_$")
    for preset in NETS:
        defaults = yaml.safe_load((CONF_DIR / "model" / f"{preset}.yaml").read_text())["defaults"]
        assert not any(isinstance(e, str) and e.startswith("nets") for e in defaults), preset  # no unconditional nets
        nets = {m.group(1): value for entry in defaults if isinstance(entry, dict)
                for key, value in entry.items() if (m := line.match(key))}
        kinds = {p.stem for family in nets for p in (CONF_DIR / "model" / "nets" / family).glob("*.yaml")}
        assert set(nets.values()) == {"${oc.select:data/kind,images}"} and kinds == set(NETS[preset]), preset
    for data in ("ring8", "grid25"):
        defaults = yaml.safe_load((CONF_DIR / "data" / f"{data}.yaml").read_text())["defaults"]
        assert defaults == [{"kind": "points"}, "_self_"], data


def test_wgan_has_the_paper_settings(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=wgan", *SMALL_DCGAN])
    assert cfg.model.n_critic == 5 and cfg.model.weight_clip == 0.01
    for opt in (cfg.model.optimizer.generator, cfg.model.optimizer.discriminator):
        assert opt._target_ == "torch.optim.RMSprop" and opt.lr == 5e-5
    assert instantiate(cfg.model).discriminator_loss.func is losses.wasserstein_discriminator_loss


@pytest.mark.parametrize("data", ["mnist5k", "ring8"])
def test_wgan_gp_has_the_paper_settings_and_no_batchnorm_in_the_critic(tmp_path: Path, data: str):
    cfg = compose_config(tmp_path, ["model=wgan_gp", f"data={data}", *(SMALL_DCGAN if data == "mnist5k" else [])])
    assert cfg.model.n_critic == 5 and cfg.model.weight_clip is None
    assert cfg.model.penalties.gradient_penalty.weight == 10.0
    for opt in (cfg.model.optimizer.generator, cfg.model.optimizer.discriminator):
        assert opt._target_ == "torch.optim.Adam" and opt.lr == 1e-4 and list(opt.betas) == [0.0, 0.9]
    module = instantiate(cfg.model)
    norms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
    assert not any(isinstance(m, norms) for m in module.discriminator.modules())
    if data == "mnist5k":
        assert any(isinstance(m, torch.nn.LayerNorm) for m in module.discriminator.modules())


def test_lsgan_and_hinge_presets_use_their_losses(tmp_path: Path):
    lsgan = instantiate(compose_config(tmp_path, ["model=lsgan", *SMALL_DCGAN]).model)
    assert lsgan.discriminator_loss.func is losses.least_squares_discriminator_loss
    assert lsgan.discriminator_loss.keywords == {"real_target": 1.0, "fake_target": 0.0}
    assert lsgan.generator_loss.keywords == {"target": 1.0}
    hinge = instantiate(compose_config(tmp_path, ["model=hinge_gan", *SMALL_DCGAN]).model)
    assert hinge.discriminator_loss.func is losses.hinge_discriminator_loss
    assert hinge.generator_loss.func is losses.wasserstein_generator_loss


@pytest.mark.parametrize(("model", "data"), [("dcgan", "ring8"), ("gan", "grid25"), ("toy_gan", "mnist5k")])
def test_a_preset_without_nets_for_the_data_kind_stops_with_one_clear_message(tmp_path: Path, model: str, data: str):
    kind, family = ("point", "toy_mlp") if KIND[data] == "points" else ("image", "dcgan")
    cfg = compose_config(tmp_path, [f"model={model}", f"data={data}"])
    with pytest.raises(ValueError) as err:
        check_model_fits_data(cfg)
    message = str(err.value)
    assert f"has no nets for {kind} data" in message
    assert "model.generator and model.discriminator are missing" in message
    assert f"- optional nets/{family}@_here_: ${{oc.select:data/kind,images}}" in message  # how to fix the preset
    listed = re.search(rf"Presets with nets for {kind} data: ([\w, ]+) \(", message).group(1).split(", ")
    assert sorted(listed) == sorted(p for p, kinds in NETS.items() if f"{kind}s" in kinds)  # and the list is true


def test_train_py_names_the_preset_and_its_file_instead_of_a_hydra_composition_error(tmp_path: Path):
    result = run_script("train.py", ["model=dcgan", "data=ring8", "logger=none", "print_config=false"], tmp_path)
    assert result.returncode != 0
    assert "model=dcgan has no nets for point data (data=ring8" in result.stderr
    assert "conf/model/dcgan.yaml lists no nets family for points" in result.stderr
    assert "Could not override" not in result.stderr + result.stdout


def test_nets_forced_onto_the_other_kind_fail_with_the_data_key_they_read(tmp_path: Path):
    forced = ["model=wgan", "data=ring8", "model/nets/dcgan@model=images", "~model/nets/toy_mlp@model"]
    cfg = compose_config(tmp_path, forced)
    assert cfg.model.generator._target_ == "genlab.nets.DCGANGenerator"
    with pytest.raises(ValueError, match=r"model\.generator\.channels reads data\.channels.*point nets read data\.dim"):
        check_model_fits_data(cfg)
    with pytest.raises(ValueError, match=r"reads data\.\w+.*built for image data.*- kind: points"):
        check_model_fits_data(compose_config(tmp_path, ["model=vae", "data=ring8"]))


def test_other_nets_replace_a_family_from_the_command_line(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=lsgan", "~model/nets/dcgan@model", "+model/nets/mlp@model=images"])
    nets = (cfg.model.generator._target_, cfg.model.discriminator._target_)
    assert nets == ("genlab.nets.MLPGenerator", "genlab.nets.MLPDiscriminator")
    assert "width" not in cfg.model.generator  # nothing of the DCGAN nets is left


def test_any_preset_takes_r1_on_top(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=lsgan", "data=ring8", "+model/penalties=r1"])
    assert set(instantiate(cfg.model).penalties) == {"r1"}
    cfg = compose_config(tmp_path, ["model=wgan_gp", "data=ring8", "model/penalties=[gradient_penalty,r1]"])
    assert set(instantiate(cfg.model).penalties) == {"gradient_penalty", "r1"}


def test_label_smoothing_is_refused_by_losses_without_a_probability_target(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=toy_gan", "data=ring8", "model.loss.discriminator.one_sided_label_smoothing=0.1"])
    assert instantiate(cfg.model).discriminator_loss.keywords["one_sided_label_smoothing"] == 0.1
    with pytest.raises(ConfigCompositionException, match="one_sided_label_smoothing"):
        compose_config(tmp_path, ["model=wgan", "model.loss.discriminator.one_sided_label_smoothing=0.1"])


# --- switches change the objective exactly as specified -----------------------------------------------------------


def test_penalties_are_added_to_the_discriminator_loss_and_logged():
    plain, penalised = toy_module(), toy_module(penalties={"r1": functools.partial(losses.r1_penalty, weight=10.0)})
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    loss, _ = d_loss(plain, real, fake)
    loss_with, logs = d_loss(penalised, real, fake)
    expected = losses.r1_penalty(penalised.discriminator, real, fake, weight=10.0)
    assert torch.isclose(loss_with - loss, expected) and torch.isclose(logs["penalty/r1"], expected)


def test_feature_matching_replaces_the_generator_loss():
    module = toy_module(feature_matching=True)
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    d = module.discriminator
    expected = ((d.features(real).mean(0) - d.features(fake).mean(0)) ** 2).sum()
    assert torch.isclose(g_loss(module, real, fake), expected)
    assert not torch.isclose(g_loss(toy_module(), real, fake), expected)


def test_nets_that_break_the_contract_fail_at_build_time_with_the_key_to_fix():
    generator, discriminator = ToyMLPGenerator(2, 2, (4,)), ToyMLPDiscriminator(dim=2, hidden=(4,), maxout_pieces=2)
    build = functools.partial(AdversarialModule, optimizer={"generator": None, "discriminator": None},
                              loss={"discriminator": None, "generator": None})
    with pytest.raises(TypeError, match=r"model.discriminator \(Linear\).*features"):
        build(generator=generator, discriminator=torch.nn.Linear(2, 1))
    with pytest.raises(TypeError, match=r"model.generator \(Linear\).*latent_dim"):
        build(generator=torch.nn.Linear(2, 2), discriminator=discriminator)
    with pytest.raises(ValueError, match=r"model.optimizer needs both.*'generator'"):
        AdversarialModule(generator, discriminator, optimizer={"discriminator": None}, loss={"discriminator": None, "generator": None})


def test_historical_averaging_adds_weighted_distance_to_the_mean_of_past_parameters():
    module, plain = toy_module(historical_averaging=0.5), toy_module()
    history = [[p.detach().clone() for p in module.generator.parameters()]]
    for step in range(3):  # pretend three generator steps moved the parameters
        with torch.no_grad():
            for p in module.generator.parameters():
                p.add_(0.1 * (step + 1))
        history.append([p.detach().clone() for p in module.generator.parameters()])
        module.generator_history.update(module.generator)
    with torch.no_grad():  # and a fourth step, not yet in the average
        for p in module.generator.parameters():
            p.add_(1.0)
    plain.load_state_dict(module.state_dict(), strict=False)
    mean = [torch.stack(ps).mean(0) for ps in zip(*history)]
    distance = sum(((p - m) ** 2).sum() for p, m in zip(module.generator.parameters(), mean))
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    assert torch.isclose(g_loss(module, real, fake), g_loss(plain, real, fake) + 0.5 * distance)


def test_minibatch_discrimination_matches_its_definition():
    layer = MinibatchDiscrimination(in_features=2, num_kernels=1, kernel_dim=2)
    with torch.no_grad():
        layer.T.copy_(torch.eye(2))  # M_i = f(x_i)
    f = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    out = layer(f)
    # o_i = sum_{j != i} exp(-||f_i - f_j||_1)
    e = math.exp
    expected = torch.tensor([e(-1) + e(-3), e(-1) + e(-4), e(-3) + e(-4)])
    assert torch.allclose(out[:, :2], f) and torch.allclose(out[:, 2], expected)


def test_minibatch_discrimination_switch_lets_scores_depend_on_the_rest_of_the_batch():
    for kernels, depends in ((0, False), (5, True)):
        torch.manual_seed(0)
        d = ToyMLPDiscriminator(dim=2, hidden=(8, 8), minibatch_discrimination=kernels)
        x = torch.randn(4, 2)
        y = x.clone()
        y[1:] += 1.0
        assert (not torch.isclose(d(x)[0], d(y)[0])) is depends
        assert any(isinstance(m, MinibatchDiscrimination) for m in d.modules()) is depends


# --- EMA --------------------------------------------------------------------------------------------------------


def test_parameter_average_equals_the_exponential_and_the_running_mean_of_a_known_sequence():
    net = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema, mean = ParameterAverage(net, decay=0.9), ParameterAverage(net)
    values = [1.0, 2.0, 4.0, 8.0]
    for v in values:
        with torch.no_grad():
            net.weight.fill_(v)
        ema.update(net)
        mean.update(net)
    # avg_t = d_t avg_(t-1) + (1 - d_t) theta_t with the warm-up d_t = min(0.9, (1 + t) / (10 + t)), avg_0 = theta_0 = 0
    expected_ema = 0.0
    for t, v in enumerate(values, start=1):
        decay = min(0.9, (1 + t) / (10 + t))
        expected_ema = decay * expected_ema + (1 - decay) * v
    assert math.isclose(ema.module.weight.item(), expected_ema, rel_tol=1e-6)
    assert math.isclose(mean.module.weight.item(), sum(values) / 5, rel_tol=1e-6)
    assert not any(p.requires_grad for p in ema.parameters())


@pytest.mark.slow
def test_generator_ema_is_trained_alongside_used_by_sample_and_restored_on_resume(tmp_path: Path):
    common = ["model=toy_gan", "data=ring8", *TINY_TOY, *FAST, "logger=none", "model.generator_ema=0.9",
              "callbacks.model_checkpoint.every_n_epochs=1"]
    train(compose_config(tmp_path, common))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert int(state["generator_ema.num_averaged"]) == 1 + 6  # the initial copy + one update per generator step
    module = instantiate(compose_config(tmp_path, common).model)
    module.load_state_dict(state)
    assert not torch.equal(state["generator_ema.module.net.0.weight"], state["generator.net.0.weight"])
    z_seed = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    z = torch.randn(5, 2, generator=z_seed())
    module.generator_ema.module.eval()
    assert torch.equal(module.sample(5, generator=z_seed()), module.generator_ema.module(z))

    train(compose_config(tmp_path, [*common, "trainer.max_epochs=2", f"ckpt_path={ckpt}"]))
    resumed = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert int(resumed["generator_ema.num_averaged"]) == 1 + 12  # continued, not restarted


# --- short real runs with each switch ----------------------------------------------------------------------------


SWITCHES = {
    "weight_clip": ["model=wgan", "model.weight_clip=0.05", "model.n_critic=2"],
    "gradient_penalty": ["model=wgan_gp", "model.n_critic=2"],
    "r1": ["model=hinge_gan", "+model/penalties=r1"],
    "label_smoothing": ["model=toy_gan", "model.loss.discriminator.one_sided_label_smoothing=0.1"],
    "feature_matching": ["model=lsgan", "model.feature_matching=true"],
    "minibatch_discrimination": ["model=toy_gan", "model.discriminator.minibatch_discrimination=8"],
    "historical_averaging": ["model=toy_gan", "model.historical_averaging=0.01"],
    "generator_ema": ["model=toy_gan", "model.generator_ema=0.99"],
}


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_each_switch_trains_a_few_steps_on_point_data(tmp_path: Path, switch: str):
    cfg = compose_config(tmp_path, [*SWITCHES[switch], "data=ring8", *TINY_TOY, *FAST_TRAINER, "logger=none", "callbacks=none"])
    # seeded: on these 16-unit nets some initialisations saturate D within 6 batches (minibatch discrimination drove
    # its scores to about +-35 for 1 of 4 seeds tried), and a saturated non-saturating loss moves G below float precision
    torch.manual_seed(0)
    module = instantiate(cfg.model)
    g0 = [p.detach().clone() for p in module.generator.parameters()]
    logged = fit_bare(cfg, module).callback_metrics
    assert math.isfinite(float(logged["loss/d"])) and math.isfinite(float(logged["loss/g"]))
    assert any(not torch.equal(a, b) for a, b in zip(g0, module.generator.parameters()))
    if switch == "weight_clip":
        params = torch.cat([p.flatten() for p in module.discriminator.parameters()])
        assert params.abs().max() <= 0.05 and (params.abs() == 0.05).any()  # clipping was active and holds
    if switch in ("gradient_penalty", "r1"):
        assert float(logged[f"penalty/{switch}"]) > 0
