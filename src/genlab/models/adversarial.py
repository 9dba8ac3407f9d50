"""``AdversarialModule``: the alternating two-player scheme shared by GAN, DCGAN, WGAN, WGAN-GP, LSGAN, hinge GAN.

Manual optimization (``automatic_optimization = False``), per batch:
  1. one discriminator step on a real batch and a detached fake batch (loss + penalties, then weight clipping);
  2. every ``n_critic``-th batch, one generator step on a fresh fake batch.
Each step toggles its own optimizer, so the other player's parameters get no gradient and stay unchanged.

Variants differ only in what they pass in: losses and penalties (``genlab.losses``), optimizers, nets, and the
training tricks below, each a constructor argument with an "off" default, so any of them composes with any preset.
"""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from genlab.losses import feature_matching_loss
from genlab.models.averaging import ParameterAverage
from genlab.models.base import GenerativeModule, evaluating, reject_condition

OptimizerFactory = Callable[..., torch.optim.Optimizer]
Penalty = Callable[[nn.Module, Tensor, Tensor], Tensor]


class AdversarialModule(GenerativeModule):
    """Generator vs discriminator with configurable losses, penalties, optimizers, ``n_critic`` and tricks.

    Args:
        generator: maps ``(N, generator.latent_dim)`` noise to samples (images in [-1, 1], or points (N, dim)).
        discriminator: maps samples to one score per sample (a logit or a critic value). Feature matching needs its
            ``features(x)`` (all ``genlab.nets`` discriminators have it).
        generator_optimizer, discriminator_optimizer: ``torch.optim`` constructors missing only the parameters
            (Hydra ``_partial_: true``).
        loss: ``{"discriminator": f(real_scores, fake_scores), "generator": f(fake_scores)}`` from ``genlab.losses``.
        n_critic: the generator steps once every ``n_critic`` discriminator steps (batches).
        penalties: named ``f(discriminator, real, fake) -> Tensor`` added to the discriminator loss (gradient
            penalty, R1), each logged as ``penalty/<name>``.
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
        generator_optimizer: OptimizerFactory,
        discriminator_optimizer: OptimizerFactory,
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
        missing = {"discriminator", "generator"} - set(loss)
        if missing:
            raise ValueError(f"model.loss needs both 'discriminator' and 'generator' entries; missing {sorted(missing)}.")
        if weight_clip is not None and weight_clip <= 0:
            raise ValueError(f"model.weight_clip must be a positive bound c (parameters kept in [-c, c]) or null, got {weight_clip}.")
        if historical_averaging < 0:
            raise ValueError(f"model.historical_averaging is a penalty weight and must be >= 0, got {historical_averaging}.")
        if feature_matching and not callable(getattr(discriminator, "features", None)):
            raise ValueError(
                f"model.feature_matching=true needs a discriminator with features(x); {type(discriminator).__name__} "
                "has none. Use a genlab.nets discriminator or add a features method to yours."
            )
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
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
            self.discriminator_optimizer(self.discriminator.parameters()),
            self.generator_optimizer(self.generator.parameters()),
        ]

    def sample(self, n: int, *, condition: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        reject_condition(self, condition)
        z = self.randn(n, self.latent_dim, generator=generator)
        net = self.generator if self.generator_ema is None else self.generator_ema.module
        with evaluating(net):
            return net(z)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, _ = batch
        d_opt, g_opt = self.optimizers()
        logs = self.discriminator_step(real, d_opt)
        if (batch_idx + 1) % self.n_critic == 0:
            logs |= self.generator_step(real, g_opt)
        self.log_dict(logs, prog_bar=True)

    def discriminator_step(self, real: Tensor, optimizer) -> dict[str, Tensor]:
        with torch.no_grad():
            fake = self.generator(self.randn(real.shape[0], self.latent_dim))
        with self.toggled_optimizer(optimizer):
            loss, logs = self.discriminator_objective(real, fake)
            self._step(optimizer, loss)
        if self.weight_clip is not None:
            with torch.no_grad():
                for p in self.discriminator.parameters():
                    p.clamp_(-self.weight_clip, self.weight_clip)
        if self.discriminator_history is not None:
            self.discriminator_history.update(self.discriminator)
        return logs

    def generator_step(self, real: Tensor, optimizer) -> dict[str, Tensor]:
        with self.toggled_optimizer(optimizer):
            loss = self.generator_objective(real, self.generator(self.randn(real.shape[0], self.latent_dim)))
            self._step(optimizer, loss)
        if self.generator_history is not None:
            self.generator_history.update(self.generator)
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator)
        return {"loss/g": loss.detach()}

    def discriminator_objective(self, real: Tensor, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The discriminator's loss on a real and a fake batch: adversarial loss + penalties + historical average."""
        real_scores = self.discriminator(real)
        fake_scores = self.discriminator(fake)
        loss = self.discriminator_loss(real_scores, fake_scores)
        logs = {"d/real_score": real_scores.detach().mean(), "d/fake_score": fake_scores.detach().mean()}
        for name, penalty in self.penalties.items():
            value = penalty(self.discriminator, real, fake)
            logs[f"penalty/{name}"] = value.detach()
            loss = loss + value
        if self.discriminator_history is not None:
            loss = loss + self.historical_averaging * self.discriminator_history.squared_distance(self.discriminator)
        return loss, logs | {"loss/d": loss.detach()}

    def generator_objective(self, real: Tensor, fake: Tensor) -> Tensor:
        """The generator's loss on fakes it just made (with their graph): the adversarial loss, or feature matching
        against ``real``, plus the historical average."""
        if self.feature_matching:
            loss = feature_matching_loss(self.discriminator.features(real), self.discriminator.features(fake))
        else:
            loss = self.generator_loss(self.discriminator(fake))
        if self.generator_history is not None:
            loss = loss + self.historical_averaging * self.generator_history.squared_distance(self.generator)
        return loss

    def _step(self, optimizer, loss: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
