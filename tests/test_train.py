"""Short real training runs: real Trainer, real MNIST-5k datamodule, real W&B in offline mode."""

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import FAST, FAST_TRAINER, SMALL, compose_config, fit_bare
from genlab.models import AdversarialModule
from genlab.run import train


def parameters(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[name], p) for name, p in module.named_parameters())


@pytest.mark.parametrize("model", ["gan", "dcgan"])
def test_short_training_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_config(tmp_path, [f"model={model}", *FAST, *SMALL[model], "callbacks.model_checkpoint.every_n_epochs=1"])

    # Spy on the real generator step: the discriminator's parameters must come out of it untouched.
    g_steps: list[bool] = []
    original = AdversarialModule.generator_step

    def generator_step(self, real, optimizer, latent, fake):
        d_before = parameters(self.discriminator)
        g_before = parameters(self.generator)
        logs = original(self, real, optimizer, latent, fake)
        g_steps.append(changed(g_before, self.generator) and not changed(d_before, self.discriminator))
        return logs

    monkeypatch.setattr(AdversarialModule, "generator_step", generator_step)
    metrics = train(cfg)

    assert len(g_steps) == 6 and all(g_steps), "each G step must update G and leave D's parameters unchanged"
    for key in ("loss/d", "loss/g", "d/real_score", "d/fake_score"):
        assert math.isfinite(metrics[key]), key
    run = tmp_path / "run"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "checkpoints" / "batch_0000006.ckpt").is_file()  # unique per save, batches counted
    pngs = sorted((run / "samples").glob("step_*.png"))
    assert [p.name for p in pngs] == ["step_000003.png", "step_000006.png"]
    assert Image.open(pngs[-1]).size == (4 * 34 + 2, 4 * 34 + 2)  # 16 samples, 4 per row, 32px + 2px padding
    assert (run / "samples" / "progress.gif").is_file()
    assert list((run / "wandb").glob("offline-run-*/run-*.wandb")), "W&B offline run files missing"


def test_both_players_learn_and_generator_moves_away_from_init(tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=dcgan", *FAST_TRAINER, *SMALL["dcgan"], "logger=none", "callbacks=none"])
    from hydra.utils import instantiate

    torch.manual_seed(0)
    module = instantiate(cfg.model)
    g0, d0 = parameters(module.generator), parameters(module.discriminator)
    fit_bare(cfg, module)
    assert changed(g0, module.generator) and changed(d0, module.discriminator)


def test_n_critic_steps_the_generator_every_nth_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from hydra.utils import instantiate

    cfg = compose_config(tmp_path, ["model=dcgan", *FAST_TRAINER, *SMALL["dcgan"], "model.n_critic=3", "logger=none", "callbacks=none"])
    module = instantiate(cfg.model)
    fit_bare(cfg, module)
    d_opt, g_opt = (opt.optimizer for opt in module.optimizers())
    d_steps = d_opt.state[next(iter(module.discriminator.parameters()))]["step"]
    g_steps = g_opt.state[next(iter(module.generator.parameters()))]["step"]
    assert (int(d_steps), int(g_steps)) == (6, 2)


def test_resume_continues_both_optimizers(tmp_path: Path):
    first = compose_config(tmp_path, ["model=dcgan", *FAST, *SMALL["dcgan"], "logger=none", "callbacks.model_checkpoint.every_n_epochs=1"])
    train(first)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    assert [int(next(iter(s["state"].values()))["step"]) for s in state["optimizer_states"]] == [6, 6]

    second = compose_config(
        tmp_path,
        ["model=dcgan", *FAST, *SMALL["dcgan"], "logger=none", "trainer.max_epochs=2", f"ckpt_path={ckpt}",
         "callbacks.model_checkpoint.every_n_epochs=1"],
    )
    train(second)
    resumed = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 1
    assert [int(next(iter(s["state"].values()))["step"]) for s in resumed["optimizer_states"]] == [12, 12]


def test_sample_grid_by_epochs(tmp_path: Path):
    cfg = compose_config(
        tmp_path,
        ["model=dcgan", *FAST, *SMALL["dcgan"], "logger=none", "trainer.max_epochs=2", "++trainer.limit_train_batches=2",
         "callbacks.sample_grid.every_n_steps=null", "callbacks.sample_grid.every_n_epochs=1"],
    )
    train(cfg)
    pngs = sorted(p.name for p in (tmp_path / "run" / "samples").glob("*.png"))
    assert pngs == ["step_000002.png", "step_000004.png"]  # one per epoch, the last not repeated at train end
