"""Config values of the wrong type stop the run before anything is built, naming the key and what it accepts."""

from pathlib import Path

import pytest

from conftest import CONF_DIR, compose_config
from genlab.validation import check_config_types

PRESETS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_as_shipped_passes(tmp_path: Path, name: str):
    check_config_types(compose_config(tmp_path, [f"model={name}"]))


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_epochs=abc", "trainer.max_epochs='abc': expected an integer or null"),
        ("trainer.max_steps=1.5", "trainer.max_steps=1.5: expected an integer"),
        ("model.n_critic=two", "model.n_critic='two': expected an integer"),
        ("data.batch_size=-1", "data.batch_size=-1: expected a positive integer"),
        ("data.batch_size=0", "data.batch_size=0: expected a positive integer"),
        ("trainer.precision=bf17", "trainer.precision='bf17': expected null or one of 64, 32, 16,"),
        ("trainer.deterministic=maybe", "trainer.deterministic='maybe': expected true or false, null or 'warn'"),
        ("model.generator.width=wide", "model.generator.width='wide': expected an integer"),
    ],
)
def test_a_wrong_value_is_named_with_what_its_target_accepts(tmp_path: Path, override: str, message: str):
    with pytest.raises(ValueError, match="config values of the wrong type") as error:
        check_config_types(compose_config(tmp_path, [override]))
    assert message in str(error.value)
    assert str(error.value).count("\n  ") == 1, "one line per wrong key"


def test_values_the_targets_accept_pass(tmp_path: Path):
    # a number where a float is expected, an integer folder name where a path is expected, a literal precision
    check_config_types(compose_config(tmp_path, ["model.optimizer.generator.lr=1", "data=folder", "data.root=2024",
                                                 "trainer.precision=32", "trainer.max_epochs=null"]))


def test_train_reports_the_wrong_key_before_building_anything(tmp_path: Path):
    from genlab.run import train

    with pytest.raises(ValueError, match="trainer.max_epochs='abc'"):
        train(compose_config(tmp_path, ["trainer.max_epochs=abc", "logger=none"]))
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(("setting", "parameters", "conv", "threads"),
                         [("auto", 10, False, 1), ("auto", 2_000_000, False, None), ("auto", 10, True, None),
                          (2, 10, False, 2), (None, 10, False, None)])
def test_cpu_threads_auto_gives_small_fully_connected_models_one_thread_and_is_restored(setting, parameters, conv, threads):
    import torch
    from torch import nn

    from genlab.run import set_cpu_threads

    model = nn.Sequential(nn.Linear(parameters, 1, bias=False), *([nn.Conv2d(1, 1, 1)] if conv else []))
    before = torch.get_num_threads()
    try:
        assert set_cpu_threads(setting, model) == before
        assert torch.get_num_threads() == (threads or before)
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="cpu_threads must be auto"):
        set_cpu_threads(0, nn.Linear(1, 1))
