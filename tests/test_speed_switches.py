"""The GPU speed switches (genlab.speed) on CPU: channels_last, compile_nets (G and D compiled separately),
trainer.precision=bf16-mixed and the trainer=fast preset, each through the real Hydra config and the real Trainer;
and the garbage-collector freeze train.py and eval.py apply after their imports."""

import gc
import math
import weakref
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from conftest import FAST, SMALL_DCGAN, compose_config
from genlab.checkpoints import load_checkpoint, load_model
from genlab.run import train
from genlab.speed import apply_speed_switches, freeze_imported_objects, trainable_nets

QUICK = [*FAST, "logger=none", "++trainer.limit_train_batches=3", "callbacks.sample_grid.every_n_steps=null"]


class TrainingProbe(pl.Callback):
    """Records what the discriminator saw in training: its inputs' memory layout and its outputs' dtype."""

    def __init__(self) -> None:
        self.inputs_channels_last: set[bool] = set()
        self.discriminator_dtypes: set[torch.dtype] = set()

    def on_train_start(self, trainer, pl_module) -> None:
        pl_module.discriminator.register_forward_hook(self.record)

    def record(self, module, args, out) -> None:
        self.inputs_channels_last.add(args[0].is_contiguous(memory_format=torch.channels_last))
        self.discriminator_dtypes.add(out.dtype)


def train_with_probe(cfg, monkeypatch) -> tuple[dict[str, float], TrainingProbe]:
    probe = TrainingProbe()
    import genlab.run

    original = genlab.run.instantiate_dict
    monkeypatch.setattr(genlab.run, "instantiate_dict", lambda node: original(node) + ([probe] if node is cfg.callbacks else []))
    return train(cfg), probe


def conv_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p for name, p in model.named_parameters() if p.dim() == 4}


def test_channels_last_converts_conv_weights_and_batches_and_keeps_outputs(tmp_path: Path, monkeypatch):
    # 3 channels: a one-channel image is channels-last and contiguous at once
    cfg = compose_config(tmp_path, ["model=dcgan", *QUICK, *SMALL_DCGAN, "data.channels=3", "channels_last=true"])
    torch.manual_seed(0)
    contiguous = instantiate(cfg.model)
    torch.manual_seed(0)
    nhwc = instantiate(cfg.model)
    apply_speed_switches(nhwc, channels_last=True)
    weights = conv_weights(nhwc)
    assert {"generator", "discriminator"} <= {name.split(".")[0] for name in weights}  # (and the EMA copy, if any)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights.values())
    # (kernels with one input channel or 1x1 spatial size are both layouts at once)
    assert not all(w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights(contiguous).values())

    z = torch.randn(8, contiguous.latent_dim)
    images = torch.rand(8, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        fake = nhwc.generator(z)
        assert fake.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(fake, contiguous.generator(z), atol=1e-5, rtol=1e-4)
        scores = nhwc.discriminator(images)
        torch.testing.assert_close(scores, contiguous.discriminator(images), atol=1e-5, rtol=1e-4)
    assert nhwc.state_dict().keys() == contiguous.state_dict().keys()

    # under the real Trainer the discriminator gets every image (real batches and fakes) channels-last
    metrics, probe = train_with_probe(cfg, monkeypatch)
    assert probe.inputs_channels_last == {True}
    assert math.isfinite(metrics["loss/d"]) and math.isfinite(metrics["loss/g"])


def test_bf16_mixed_trains_on_cpu_with_bf16_discriminator_outputs(tmp_path: Path, monkeypatch):
    # channels_last=false: the default run's recipe (conf/demo/dcgan_mnist5k.yaml) turns it on
    overrides = ["model=dcgan", *QUICK, *SMALL_DCGAN, "data.channels=3", "trainer.precision=bf16-mixed", "channels_last=false"]
    cfg = compose_config(tmp_path, overrides)
    metrics, probe = train_with_probe(cfg, monkeypatch)
    assert torch.bfloat16 in probe.discriminator_dtypes  # autocast reached the nets
    assert probe.inputs_channels_last == {False}  # the switches are independent
    assert math.isfinite(metrics["loss/d"]) and math.isfinite(metrics["loss/g"])
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["state_dict"]
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())  # fp32 master weights


@pytest.mark.slow  # inductor compiles each net's graphs with gcc: about a minute on 2 cores
def test_compiled_nets_train_and_their_checkpoint_loads_uncompiled(tmp_path: Path, monkeypatch):
    overrides = ["model=toy_gan", "data=ring8", *QUICK, "compile_nets=true", "callbacks.model_checkpoint.every_n_batches=3"]
    cfg = compose_config(tmp_path, overrides)
    compiled: list[str] = []
    original = apply_speed_switches

    def spy(model, channels_last=False, compile_nets=False):
        original(model, channels_last, compile_nets)
        compiled.extend(type(net).__name__ for net in trainable_nets(model) if net._compiled_call_impl is not None)

    monkeypatch.setattr("genlab.run.apply_speed_switches", spy)
    torch.manual_seed(1)
    initial = instantiate(cfg.model).state_dict()
    metrics = train(cfg)
    assert len(compiled) == 2  # the generator and the discriminator, each on its own
    assert math.isfinite(metrics["loss/d"]) and math.isfinite(metrics["loss/g"])

    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    state = load_checkpoint(ckpt)["state_dict"]
    assert state.keys() == initial.keys()  # no "_orig_mod." prefixes
    assert any(not torch.equal(state[k], initial[k]) for k in state)  # it trained
    model, _ = load_model(cfg, ckpt, torch.device("cpu"))  # eval.py's loader, uncompiled, strict
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name


@pytest.mark.parametrize(
    ("override", "named"),
    [("channels_last=yes", "channels_last"), ("compile_nets=2", "compile_nets"),
     ("++trainer.benchmark=true", "trainer.deterministic")],
)
def test_bad_speed_settings_name_the_key(tmp_path: Path, override: str, named: str):
    extra = ["trainer.deterministic=true"] if "benchmark" in override else []
    cfg = compose_config(tmp_path, ["model=dcgan", *QUICK, override, *extra])
    with pytest.raises(ValueError, match=named):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before anything was built


def test_fast_preset_is_bf16_with_cudnn_benchmark_and_not_deterministic(tmp_path: Path):
    trainer = compose_config(tmp_path, ["trainer=fast"]).trainer
    assert (trainer.precision, trainer.benchmark, trainer.deterministic, trainer.accelerator) == ("bf16-mixed", True, False, "gpu")
    with pytest.raises(ValueError, match="trainer.benchmark=true .* conflicts with trainer.deterministic=true"):
        train(compose_config(tmp_path, ["trainer=fast", "trainer.deterministic=true"]))


def test_freezing_the_imports_collects_their_garbage_first_and_turns_collection_back_on():
    """What train.py and eval.py do around their imports: the objects alive move out of the collector's reach, the
    unreachable cycles among them are freed first, and collection works again for what the run creates."""

    class Node:
        pass

    gc.disable()
    try:
        cycle = Node()
        cycle.me = cycle
        freed_before_freezing = weakref.ref(cycle)
        del cycle
        tracked = len(gc.get_objects())
        freeze_imported_objects()
        assert freed_before_freezing() is None
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0.9 * tracked and len(gc.get_objects()) < 0.1 * tracked
        later = Node()
        later.me = later
        freed_later = weakref.ref(later)
        del later
        gc.collect()
        assert freed_later() is None
    finally:
        gc.unfreeze()
        gc.enable()
