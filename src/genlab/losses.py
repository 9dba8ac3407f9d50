"""Adversarial losses as pure functions of discriminator outputs.

Convention: every function returns a loss that its player *minimises*. Discriminator losses take the raw
discriminator outputs (logits / critic values) on a real and a fake batch; generator losses take the outputs on a
fake batch. A GAN variant picks one of each in ``conf/model/loss/``.
"""

import torch
import torch.nn.functional as F
from torch import Tensor


def binary_cross_entropy_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Goodfellow et al. 2014, Eq. 1, as a loss for D: -E[log D(x)] - E[log(1 - D(G(z)))], with D = sigmoid(logit).

    Shared by the minimax and the non-saturating game: they differ only in the generator's loss.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
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
