"""Losses against hand-computed values on fixed logits, and their sign conventions."""

import math

import torch

from genlab import losses

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_bce_discriminator_loss_matches_hand_computation():
    # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f)
    expected = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2
    assert torch.isclose(losses.binary_cross_entropy_discriminator_loss(REAL, FAKE), torch.tensor(expected))


def test_generator_losses_match_hand_computation():
    non_saturating = (softplus(-0.5) + softplus(3.0)) / 2  # -log sigmoid(f)
    minimax = -(softplus(0.5) + softplus(-3.0)) / 2  # log(1 - sigmoid(f))
    assert torch.isclose(losses.non_saturating_generator_loss(FAKE), torch.tensor(non_saturating))
    assert torch.isclose(losses.minimax_generator_loss(FAKE), torch.tensor(minimax))


def test_discriminator_loss_falls_as_d_separates_real_from_fake():
    worse = losses.binary_cross_entropy_discriminator_loss(torch.zeros(4), torch.zeros(4))
    better = losses.binary_cross_entropy_discriminator_loss(torch.full((4,), 3.0), torch.full((4,), -3.0))
    assert better < worse


def test_generator_losses_fall_as_d_is_fooled():
    for fn in (losses.non_saturating_generator_loss, losses.minimax_generator_loss):
        assert fn(torch.full((4,), 3.0)) < fn(torch.full((4,), -3.0))


def test_non_saturating_has_strong_gradient_where_minimax_saturates():
    # Early training: D confidently rejects fakes (very negative logit).
    logits = torch.full((1,), -8.0, requires_grad=True)
    (g_ns,) = torch.autograd.grad(losses.non_saturating_generator_loss(logits), logits)
    logits = torch.full((1,), -8.0, requires_grad=True)
    (g_mm,) = torch.autograd.grad(losses.minimax_generator_loss(logits), logits)
    assert g_ns.abs() > 100 * g_mm.abs()
