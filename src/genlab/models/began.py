"""BEGAN (Berthelot, Schumm & Metz 2017, "BEGAN: Boundary Equilibrium Generative Adversarial Networks").

The discriminator is an autoencoder whose score is its reconstruction energy L(v) = |v - D(v)|
(:class:`genlab.nets.BEGANDiscriminator`). With k_t in [0, 1] (Eq. 4):

    L_D = L(x) - k_t L(G(z_D)),    L_G = L(G(z_G)),
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1),

and the convergence measure M = L(x) + |gamma L(x) - L(G(z))| (Sec. 3.4.1). gamma = E[L(G(z))] / E[L(x)] is the
diversity ratio the control holds; k_t is a buffer, so it is checkpointed and a resumed run continues the control.

Why an :class:`~genlab.models.adversarial.AdversarialModule` extension and not a scheme of its own: BEGAN is the
alternating two-player step with another loss and one scalar controller. The shared step, optimizers, EMA and the
sampling contract all apply unchanged; only the loss reads k_t (a bound method, so penalties and historical
averaging still compose) and :meth:`BEGAN.discriminator_step` updates k_t after each discriminator step from that
step's L(x) and L(G(z)), both measured before the update, as the public reference implementation does
(carpedm20/BEGAN-tensorflow, trainer.py: one z, k updated after the D and G optimisers). z ~ U[-1, 1]^N_z (Sec. 4.1).
The paper's generator has a linear output; samples for the [-1, 1] contract are clamped, training sees them as they are.

Not implemented: the paper halves the learning rate "when the measure of convergence stalls" (Sec. 4.1; the
reference code halves it every 100k steps), which is far beyond a CPU demo's budget.
"""

import torch
from torch import Tensor, nn

from genlab.losses import began_discriminator_loss, began_generator_loss
from genlab.models.adversarial import AdversarialModule, Latent, OptimizerFactory


def equilibrium_update(k: float, real_loss: float, fake_loss: float, gamma: float, lambda_k: float) -> float:
    """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1) (Eq. 4)."""
    return min(max(k + lambda_k * (gamma * real_loss - fake_loss), 0.0), 1.0)


def convergence_measure(real_loss: float, fake_loss: float, gamma: float) -> float:
    """M_global = L(x) + |gamma L(x) - L(G(z))| (Sec. 3.4.1): falls as the autoencoder gets better at real data
    while the generator keeps the two energies in the ratio gamma."""
    return real_loss + abs(gamma * real_loss - fake_loss)


class BEGAN(AdversarialModule):
    """The adversarial scheme with BEGAN's energy losses and equilibrium control.

    Args:
        generator, discriminator, optimizer: as :class:`AdversarialModule`; the discriminator scores samples by its
            reconstruction energy (:class:`genlab.nets.BEGANDiscriminator`). The losses are BEGAN's own, so there
            is no ``loss`` argument.
        gamma: the diversity ratio in (0, 1] (the paper: 0.5; lower gives sharper, less varied samples).
        lambda_k: the proportional gain of the k_t control (the paper: 0.001).
        k_initial: k_0 in [0, 1] (the paper: 0).
        **kwargs: the other :class:`AdversarialModule` switches (n_critic, generator_ema, penalties, ...).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer: dict[str, OptimizerFactory],
        gamma: float = 0.5,
        lambda_k: float = 0.001,
        k_initial: float = 0.0,
        **kwargs,
    ):
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"model.gamma is the diversity ratio E[L(G(z))] / E[L(x)] and must be in (0, 1], got {gamma}.")
        if lambda_k < 0:
            raise ValueError(f"model.lambda_k is the gain of the k_t control and must be >= 0, got {lambda_k}.")
        if not 0.0 <= k_initial <= 1.0:
            raise ValueError(f"model.k_initial is k_0 and must be in [0, 1], got {k_initial}.")
        if "loss" in kwargs:
            raise ValueError("model.loss: BEGAN's losses are fixed by the paper (L_D = L(x) - k_t L(G(z)), L_G = L(G(z))); remove it.")
        loss = {"discriminator": self.equilibrium_discriminator_loss, "generator": began_generator_loss}
        super().__init__(generator, discriminator, optimizer, loss, **kwargs)
        self.gamma, self.lambda_k = gamma, lambda_k
        self.register_buffer("k", torch.tensor(float(k_initial)))

    def equilibrium_discriminator_loss(self, real_energy: Tensor, fake_energy: Tensor) -> Tensor:
        return began_discriminator_loss(real_energy, fake_energy, self.k)

    def draw_latent(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Latent:
        """z ~ U[-1, 1]^latent_dim (Sec. 4.1), from ``generator`` or the module's stream."""
        return Latent(torch.rand(n, self.latent_dim, generator=generator or self.rng).to(self.device) * 2 - 1)

    def discriminator_step(self, batch, optimizer, latent: Latent, fake: Tensor) -> dict[str, Tensor]:
        logs = super().discriminator_step(batch, optimizer, latent, fake)
        # L(x), L(G(z)) before this update
        real_energy, fake_energy = float(logs["d/real_score"]), float(logs["d/fake_score"])
        measure = convergence_measure(real_energy, fake_energy, self.gamma)
        self.k.fill_(equilibrium_update(float(self.k), real_energy, fake_energy, self.gamma, self.lambda_k))
        return logs | {"began/k": self.k.clone(), "began/convergence": torch.tensor(measure)}

    def sample(self, n: int, *, condition: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        return super().sample(n, condition=condition, generator=generator).clamp(-1, 1)

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return super().decode(z, labels).clamp(-1, 1)
