"""``AdversarialModule``: the alternating two-player scheme shared by GAN, DCGAN, WGAN, WGAN-GP, LSGAN, hinge GAN.

Manual optimization (``automatic_optimization = False``), per batch:
  1. one discriminator step on a real batch and a detached fake batch (loss + penalties, then weight clipping);
  2. every ``n_critic``-th batch, one generator step on a fresh fake batch.
Each step toggles its own optimizer, so the other player's parameters get no gradient and stay unchanged.

Variants differ only in what they pass in: losses and penalties (``genlab.losses``), optimizers, nets, and the
training tricks below, each a constructor argument with an "off" default, so any of them composes with any preset.

Schemes that extend it (conditional GANs, InfoGAN) override the four hooks, not the steps:
  * :meth:`AdversarialModule.draw_latent` -- the one place noise is drawn, returning a :class:`Latent`;
  * :meth:`AdversarialModule.generate` -- latent -> samples;
  * :meth:`AdversarialModule.discriminate` -- samples (+ labels) -> scores; penalties see it with the labels bound;
  * :meth:`AdversarialModule.discriminator_objective` / :meth:`AdversarialModule.generator_objective` -- they get
    the real :class:`~genlab.data.batch.Batch` and the fakes together with the latent that made them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from genlab.data.batch import Batch
from genlab.losses import feature_matching_loss
from genlab.models.averaging import ParameterAverage
from genlab.models.base import GenerativeModule, evaluating, reject_condition

OptimizerFactory = Callable[..., torch.optim.Optimizer]
Critic = Callable[[Tensor], Tensor]
Penalty = Callable[[Critic, Tensor, Tensor], Tensor]
PLAYERS = ("discriminator", "generator")


@dataclass
class Latent:
    """What a generator is driven by: the noise ``z`` and, for conditional schemes, the labels it is made for.
    Extensions add their own fields (InfoGAN: the latent codes) by subclassing."""

    z: Tensor
    labels: Tensor | None = None


class AdversarialModule(GenerativeModule):
    """Generator vs discriminator with configurable losses, penalties, optimizers, ``n_critic`` and tricks.

    Args:
        generator: maps ``(N, generator.latent_dim)`` noise to samples (images in [-1, 1], or points (N, dim)).
        discriminator: maps samples to one score per sample (a logit or a critic value) and has ``features(x)``
            (``genlab.nets.protocols``; all ``genlab.nets`` discriminators do).
        optimizer: ``{"generator": ..., "discriminator": ...}`` ``torch.optim`` constructors missing only the
            parameters (Hydra ``_partial_: true``; the ``model/optimizer`` config group).
        loss: ``{"discriminator": f(real_scores, fake_scores), "generator": f(fake_scores)}`` from ``genlab.losses``.
        n_critic: the generator steps once every ``n_critic`` discriminator steps (batches).
        penalties: named ``f(critic, real, fake) -> Tensor`` added to the discriminator loss (gradient penalty,
            R1), each logged as ``penalty/<name>``; ``critic`` is :meth:`discriminate` with the batch's labels bound.
        weight_clip: c > 0 clamps every discriminator parameter to [-c, c] after each of its steps (WGAN,
            Arjovsky et al. 2017, Alg. 1).
        feature_matching: the generator minimises ||E f(x) - E f(G(z))||^2 over the discriminator's features
            *instead of* ``loss["generator"]`` (Salimans et al. 2016, Sec. 3.1).
        historical_averaging: weight w > 0 adds w * ||theta - mean of past theta||^2 to each player's loss
            (Salimans et al. 2016, Sec. 3.3).
        generator_ema: decay d of an exponential moving average of the generator's weights, updated after every
            generator step; ``sample()`` then draws from the averaged generator (Karras et al. 2018; Yazici et al.
            2019). Checkpointed with the model.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer: dict[str, OptimizerFactory],
        loss: dict[str, Callable[..., Tensor]],
        n_critic: int = 1,
        penalties: dict[str, Penalty] | None = None,
        weight_clip: float | None = None,
        feature_matching: bool = False,
        historical_averaging: float = 0.0,
        generator_ema: float | None = None,
    ):
        super().__init__()
        if n_critic < 1:
            raise ValueError(f"n_critic must be a positive integer (generator steps every n-th batch), got {n_critic}.")
        for name, entries in (("loss", loss), ("optimizer", optimizer)):
            missing = set(PLAYERS) - set(entries or {})
            if missing:
                raise ValueError(f"model.{name} needs both 'discriminator' and 'generator' entries; missing {sorted(missing)}.")
        if weight_clip is not None and weight_clip <= 0:
            raise ValueError(f"model.weight_clip must be a positive bound c (parameters kept in [-c, c]) or null, got {weight_clip}.")
        if historical_averaging < 0:
            raise ValueError(f"model.historical_averaging is a penalty weight and must be >= 0, got {historical_averaging}.")
        check_nets(generator, discriminator)
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.optimizer_factories = dict(optimizer)
        self.discriminator_loss = loss["discriminator"]
        self.generator_loss = loss["generator"]
        self.n_critic = n_critic
        self.penalties = dict(penalties or {})
        self.weight_clip = weight_clip
        self.feature_matching = feature_matching
        self.historical_averaging = historical_averaging
        self.latent_dim: int = generator.latent_dim
        # Submodules, so they are checkpointed and restored with ckpt_path=; never handed to an optimizer.
        self.generator_ema = ParameterAverage(generator, decay=generator_ema) if generator_ema is not None else None
        self.generator_history = ParameterAverage(generator) if historical_averaging else None
        self.discriminator_history = ParameterAverage(discriminator) if historical_averaging else None

    def configure_optimizers(self):
        return [
            self.optimizer_factories["discriminator"](self.discriminator.parameters()),
            self.optimizer_factories["generator"](self.generator.parameters()),
        ]

    # -- hooks for extensions -----------------------------------------------------------------------------------------
    def draw_latent(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Latent:
        """The noise for ``n`` fakes (from ``generator``, else the module's own stream). ``labels`` are the real
        batch's in training and the condition when sampling; unconditional schemes ignore them."""
        return Latent(self.randn(n, self.latent_dim, generator=generator))

    def generate(self, latent: Latent, net: nn.Module | None = None) -> Tensor:
        """Fakes from ``latent`` with ``net`` (default: the live generator; sampling passes the EMA copy)."""
        return (net or self.generator)(latent.z)

    def discriminate(self, samples: Tensor, labels: Tensor | None = None) -> Tensor:
        """One score per sample; conditional discriminators also read the labels."""
        return self.discriminator(samples)

    # -- the sampling contract ----------------------------------------------------------------------------------------
    def sample(self, n: int, *, condition: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        reject_condition(self, condition)
        net = self.generator if self.generator_ema is None else self.generator_ema.module
        with evaluating(net):
            return self.generate(self.draw_latent(n, condition, generator), net)

    # -- training -----------------------------------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> None:
        d_opt, g_opt = self.optimizers()
        logs = self.discriminator_step(batch, d_opt)
        if (batch_idx + 1) % self.n_critic == 0:
            logs |= self.generator_step(batch, g_opt)
        self.log_dict(logs, prog_bar=True, batch_size=len(batch))

    def discriminator_step(self, batch: Batch, optimizer) -> dict[str, Tensor]:
        latent = self.draw_latent(len(batch), batch.labels)
        with torch.no_grad():
            fake = self.generate(latent)
        with self.toggled_optimizer(optimizer):
            loss, logs = self.discriminator_objective(batch, fake, latent)
            self._step(optimizer, loss)
        if self.weight_clip is not None:
            with torch.no_grad():
                for p in self.discriminator.parameters():
                    p.clamp_(-self.weight_clip, self.weight_clip)
        if self.discriminator_history is not None:
            self.discriminator_history.update(self.discriminator)
        return logs

    def generator_step(self, batch: Batch, optimizer) -> dict[str, Tensor]:
        latent = self.draw_latent(len(batch), batch.labels)
        with self.toggled_optimizer(optimizer):
            loss, logs = self.generator_objective(batch, self.generate(latent), latent)
            self._step(optimizer, loss)
        if self.generator_history is not None:
            self.generator_history.update(self.generator)
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator)
        return logs

    def discriminator_objective(self, batch: Batch, fake: Tensor, latent: Latent) -> tuple[Tensor, dict[str, Tensor]]:
        """The discriminator's loss on the real batch and detached fakes: adversarial loss + penalties + historical
        average, and what to log."""
        real_scores = self.discriminate(batch.images, batch.labels)
        fake_scores = self.discriminate(fake, latent.labels)
        loss = self.discriminator_loss(real_scores, fake_scores)
        logs = {"d/real_score": real_scores.detach().mean(), "d/fake_score": fake_scores.detach().mean()}
        critic = partial(self.discriminate, labels=batch.labels)
        for name, penalty in self.penalties.items():
            value = penalty(critic, batch.images, fake)
            logs[f"penalty/{name}"] = value.detach()
            loss = loss + value
        if self.discriminator_history is not None:
            loss = loss + self.historical_averaging * self.discriminator_history.squared_distance(self.discriminator)
        return loss, logs | {"loss/d": loss.detach()}

    def generator_objective(self, batch: Batch, fake: Tensor, latent: Latent) -> tuple[Tensor, dict[str, Tensor]]:
        """The generator's loss on fakes it just made (with their graph): the adversarial loss, or feature matching
        against the real batch, plus the historical average; and what to log."""
        if self.feature_matching:
            loss = feature_matching_loss(self.discriminator.features(batch.images), self.discriminator.features(fake))
        else:
            loss = self.generator_loss(self.discriminate(fake, latent.labels))
        if self.generator_history is not None:
            loss = loss + self.historical_averaging * self.generator_history.squared_distance(self.generator)
        return loss, {"loss/g": loss.detach()}

    def _step(self, optimizer, loss: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()


def check_nets(generator: nn.Module, discriminator: nn.Module) -> None:
    """Fail at build time, with the config key to fix, when a net does not fit the adversarial contract."""
    from genlab.nets.protocols import Discriminator, Generator

    if not isinstance(generator, Generator) or not isinstance(generator.latent_dim, int):
        raise TypeError(
            f"model.generator ({type(generator).__name__}) is not a generator: it needs an integer latent_dim and "
            "forward(z) -> samples. Point model.generator._target_ at a genlab.nets generator or add those."
        )
    if not isinstance(discriminator, Discriminator):
        raise TypeError(
            f"model.discriminator ({type(discriminator).__name__}) is not a discriminator: it needs forward(x) -> "
            "one score per sample and features(x) -> its last hidden layer (feature matching and minibatch "
            "discrimination read it). Point model.discriminator._target_ at a genlab.nets discriminator or add those."
        )
