"""Adversarial losses as pure functions of discriminator outputs.

Convention: every function returns a loss that its player *minimises*. Discriminator losses take the raw
discriminator outputs (logits / critic values) on a real and a fake batch; generator losses take the outputs on a
fake batch. A GAN variant picks one of each in ``conf/model/loss/``.

Penalties (``gradient_penalty``, ``r1_penalty``) share the signature ``penalty(critic, real, fake)`` (``critic``: the
discriminator as a function of samples, labels bound for conditional models) and are
added to the discriminator's loss; a model lists them under ``model.penalties`` (``conf/model/penalties/``).
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def binary_cross_entropy_discriminator_loss(
    real_logits: Tensor, fake_logits: Tensor, one_sided_label_smoothing: float = 0.0
) -> Tensor:
    """Goodfellow et al. 2014, Eq. 1, as a loss for D: -E[log D(x)] - E[log(1 - D(G(z)))], with D = sigmoid(logit).

    Shared by the minimax and the non-saturating game: they differ only in the generator's loss.
    ``one_sided_label_smoothing`` = s replaces the real target 1 by 1 - s (Salimans et al. 2016, Sec. 3.4: e.g.
    0.9 for real, fake target kept at 0), so D cannot grow arbitrarily confident on real data; the loss becomes
    -E[(1 - s) log D(x) + s log(1 - D(x))] - E[log(1 - D(G(z)))].
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 1.0 - one_sided_label_smoothing))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def minimax_generator_loss(fake_logits: Tensor) -> Tensor:
    """Goodfellow et al. 2014, Eq. 1 for G: E[log(1 - D(G(z)))].

    Saturates early in training (D rejects fakes confidently, the gradient vanishes), which is why the paper trains
    with the non-saturating form instead; kept for the seeds' comparison.
    """
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def non_saturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """Goodfellow et al. 2014, Sec. 3: G maximises log D(G(z)), i.e. minimises -E[log D(G(z))]."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def wasserstein_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Arjovsky et al. 2017, Eq. 3 / Alg. 1, as a loss for the critic: E[D(G(z))] - E[D(x)].

    Minimising it maximises the critic's estimate of the Wasserstein-1 distance; it is only an estimate when the
    critic is (close to) 1-Lipschitz, which weight clipping or a gradient penalty has to enforce.
    """
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: Tensor) -> Tensor:
    """Arjovsky et al. 2017, Alg. 1 for G: -E[D(G(z))]. Also the generator loss of the hinge GAN
    (Lim & Ye 2017, Miyato et al. 2018, Eq. 17), which shares it."""
    return -fake_scores.mean()


def least_squares_discriminator_loss(
    real_scores: Tensor, fake_scores: Tensor, real_target: float = 1.0, fake_target: float = 0.0
) -> Tensor:
    """Mao et al. 2017 (LSGAN), Eq. 2 for D: 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2].

    ``real_target`` is b, ``fake_target`` is a: the paper's 0-1 coding is a=0, b=1 (c=1 for G); its Eq. 8 coding
    with b - c = 1 and b - a = 2 is a=-1, b=1, c=0 (Pearson chi^2 divergence).
    """
    return 0.5 * (real_scores - real_target).square().mean() + 0.5 * (fake_scores - fake_target).square().mean()


def least_squares_generator_loss(fake_scores: Tensor, target: float = 1.0) -> Tensor:
    """Mao et al. 2017 (LSGAN), Eq. 2 for G: 1/2 E[(D(G(z)) - c)^2], ``target`` = c."""
    return 0.5 * (fake_scores - target).square().mean()


def hinge_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Lim & Ye 2017 ("Geometric GAN"), Miyato et al. 2018 (SN-GAN) Eq. 16: E[max(0, 1 - D(x))] +
    E[max(0, 1 + D(G(z)))]. Scores beyond the margin stop contributing, so D stops pushing on samples it already
    separates. The generator uses :func:`wasserstein_generator_loss`."""
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def feature_matching_loss(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """Salimans et al. 2016, Sec. 3.1: ||E_x f(x) - E_z f(G(z))||_2^2 over an intermediate layer f of D.

    A generator objective instead of maximising D's output: G matches the statistics of real data in D's feature
    space, which is less prone to over-training on the current discriminator. The batch means are the expectations;
    ``real_features`` are treated as constants.
    """
    return (real_features.detach().mean(0) - fake_features.mean(0)).square().sum()


def gradient_penalty(
    discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, weight: float = 10.0
) -> Tensor:
    """Gulrajani et al. 2017 (WGAN-GP), Eq. 3 / Alg. 1: weight * E[(||grad_x D(x_hat)||_2 - 1)^2] with
    x_hat = eps * x + (1 - eps) * G(z), eps ~ U[0, 1] per sample (two-sided: norms below 1 are penalised too).

    The graph through the gradient is kept (``create_graph``) so the penalty trains the critic.
    """
    eps = torch.rand(real.shape[0], *[1] * (real.dim() - 1), device=real.device, dtype=real.dtype)
    interpolates = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    return weight * (_input_gradient(discriminator, interpolates).norm(2, dim=1) - 1).square().mean()


def r1_penalty(discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, weight: float = 10.0) -> Tensor:
    """Mescheder et al. 2018 ("Which training methods for GANs do actually converge?"), Eq. 9:
    weight / 2 * E_x[||grad_x D(x)||_2^2] on real data only (``fake`` is unused; penalties share one signature)."""
    real = real.detach().requires_grad_(True)
    return 0.5 * weight * _input_gradient(discriminator, real).square().sum(1).mean()


def _input_gradient(discriminator: Callable[[Tensor], Tensor], inputs: Tensor) -> Tensor:
    """d sum(D(inputs)) / d inputs, one flattened row per sample (samples are independent in D's output)."""
    (grad,) = torch.autograd.grad(discriminator(inputs).sum(), inputs, create_graph=True)
    return grad.flatten(1)
