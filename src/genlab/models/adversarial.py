"""``AdversarialModule``: the alternating two-player scheme shared by GAN, DCGAN and their loss/optimizer variants.

Manual optimization (``automatic_optimization = False``), per batch:
  1. one discriminator step on a real batch and a detached fake batch;
  2. every ``n_critic``-th batch, one generator step on a fresh fake batch.
Each step toggles its own optimizer, so the other player's parameters get no gradient and stay unchanged.
"""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from genlab.models.base import GenerativeModule, evaluating, reject_condition

OptimizerFactory = Callable[..., torch.optim.Optimizer]


class AdversarialModule(GenerativeModule):
    """Generator vs discriminator with configurable losses, optimizers and ``n_critic``.

    Args:
        generator: maps ``(N, generator.latent_dim)`` noise to images in [-1, 1].
        discriminator: maps images to one score per image (a logit or a critic value).
        generator_optimizer, discriminator_optimizer: ``torch.optim`` constructors missing only the parameters
            (Hydra ``_partial_: true``).
        loss: ``{"discriminator": f(real_scores, fake_scores), "generator": f(fake_scores)}`` from ``genlab.losses``.
        n_critic: the generator steps once every ``n_critic`` discriminator steps (batches).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        generator_optimizer: OptimizerFactory,
        discriminator_optimizer: OptimizerFactory,
        loss: dict[str, Callable[..., Tensor]],
        n_critic: int = 1,
    ):
        super().__init__()
        if n_critic < 1:
            raise ValueError(f"n_critic must be a positive integer (generator steps every n-th batch), got {n_critic}.")
        missing = {"discriminator", "generator"} - set(loss)
        if missing:
            raise ValueError(f"model.loss needs both 'discriminator' and 'generator' entries; missing {sorted(missing)}.")
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        self.discriminator_loss = loss["discriminator"]
        self.generator_loss = loss["generator"]
        self.n_critic = n_critic
        self.latent_dim: int = generator.latent_dim

    def configure_optimizers(self):
        return [
            self.discriminator_optimizer(self.discriminator.parameters()),
            self.generator_optimizer(self.generator.parameters()),
        ]

    def sample(self, n: int, *, condition: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        reject_condition(self, condition)
        z = self.randn(n, self.latent_dim, generator=generator)
        with evaluating(self.generator):
            return self.generator(z)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, _ = batch
        d_opt, g_opt = self.optimizers()
        logs = self.discriminator_step(real, d_opt)
        if (batch_idx + 1) % self.n_critic == 0:
            logs |= self.generator_step(real.shape[0], g_opt)
        self.log_dict(logs, prog_bar=True)

    def discriminator_step(self, real: Tensor, optimizer) -> dict[str, Tensor]:
        with torch.no_grad():
            fake = self.generator(self.randn(real.shape[0], self.latent_dim))
        with self.toggled_optimizer(optimizer):
            real_scores = self.discriminator(real)
            fake_scores = self.discriminator(fake)
            loss = self.discriminator_loss(real_scores, fake_scores)
            self._step(optimizer, loss)
        return {
            "loss/d": loss.detach(),
            "d/real_score": real_scores.detach().mean(),
            "d/fake_score": fake_scores.detach().mean(),
        }

    def generator_step(self, batch_size: int, optimizer) -> dict[str, Tensor]:
        with self.toggled_optimizer(optimizer):
            fake_scores = self.discriminator(self.generator(self.randn(batch_size, self.latent_dim)))
            loss = self.generator_loss(fake_scores)
            self._step(optimizer, loss)
        return {"loss/g": loss.detach()}

    def _step(self, optimizer, loss: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()


