"""``model.reuse_fakes``: the generator step trains on the fakes its discriminator step judged (one generator forward
less a step), under the real Trainer."""

import copy
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from conftest import FAST_TRAINER, SMALL_DCGAN, SMALL_TOY, compose_config, fit_bare
from genlab.models import AdversarialModule


def fit(tmp_path: Path, overrides: list[str], initial: dict | None = None) -> AdversarialModule:
    """The preset trained under a bare Trainer; ``initial`` gets copies of its nets as built."""
    cfg = compose_config(tmp_path, [*overrides, "logger=none", "callbacks=none"])
    module = instantiate(cfg.model)
    if initial is not None:
        initial.update(G=copy.deepcopy(module.generator), D=copy.deepcopy(module.discriminator))
    fit_bare(cfg, module)
    return module


def record_steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, torch.Tensor]]:
    """(player, fakes) of every step, in order."""
    steps = []
    for player in ("discriminator", "generator"):
        original = getattr(AdversarialModule, f"{player}_step")

        def step(self, batch, optimizer, latent, fake, player=player, original=original):
            steps.append((player, fake))
            return original(self, batch, optimizer, latent, fake)

        monkeypatch.setattr(AdversarialModule, f"{player}_step", step)
    return steps


@pytest.mark.parametrize("reuse", [True, False])
def test_generator_steps_on_the_discriminator_steps_fakes_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reuse: bool
):
    steps = record_steps(monkeypatch)
    calls = []
    original_generate = AdversarialModule.generate
    monkeypatch.setattr(AdversarialModule, "generate", lambda self, *a, **k: calls.append(1) or original_generate(self, *a, **k))

    fit(tmp_path, ["model=dcgan", *FAST_TRAINER, *SMALL_DCGAN, "model.n_critic=2", f"model.reuse_fakes={str(reuse).lower()}"])

    assert [player for player, _ in steps] == ["discriminator", "discriminator", "generator"] * 3  # 6 batches
    assert len(calls) == (6 if reuse else 9), "one generator forward a batch, plus one a generator step without reuse"
    for index in (2, 5, 8):
        (_, judged), (_, trained_on) = steps[index - 1], steps[index]
        assert judged.grad_fn is None and trained_on.grad_fn is not None  # D never backpropagates into G
        assert torch.equal(judged, trained_on.detach()) == reuse


def test_reused_fakes_train_as_a_plain_loop_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """One batch of the toy GAN equals the plain step written by hand: fakes G(z), a D step on them detached, then a
    G step through the same fakes and the updated D."""
    captured = {}
    original = AdversarialModule.discriminator_step

    def discriminator_step(self, batch, optimizer, latent, fake):
        captured.update(images=batch.images.clone(), z=latent.z.clone())
        return original(self, batch, optimizer, latent, fake)

    monkeypatch.setattr(AdversarialModule, "discriminator_step", discriminator_step)
    initial = {}
    module = fit(tmp_path, [*SMALL_TOY, "model.reuse_fakes=true", "trainer.max_epochs=1", "++trainer.limit_train_batches=1"], initial)

    G, D = copy.deepcopy(initial["G"]), copy.deepcopy(initial["D"])
    d_opt = module.optimizer_factories["discriminator"](D.parameters())
    g_opt = module.optimizer_factories["generator"](G.parameters())
    fake = G(captured["z"])
    module.discriminator_loss(D(captured["images"]), D(fake.detach())).backward()
    d_opt.step()
    D.requires_grad_(False)
    module.generator_loss(D(fake)).backward()
    g_opt.step()

    for mine, theirs in ((module.generator, G), (module.discriminator, D)):
        for (name, a), b in zip(mine.named_parameters(), theirs.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-7, msg=name)
    for net, name in ((module.generator, "G"), (module.discriminator, "D")):  # both players moved
        assert any(not torch.equal(a, b) for a, b in zip(net.parameters(), initial[name].parameters())), name
