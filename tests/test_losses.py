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


# --- Wasserstein, least squares, hinge, label smoothing, feature matching (REAL = [2, -1], FAKE = [0.5, -3]) ---

def test_wasserstein_losses_match_hand_computation():
    assert torch.isclose(losses.wasserstein_discriminator_loss(REAL, FAKE), torch.tensor(-1.25 - 0.5))
    assert torch.isclose(losses.wasserstein_generator_loss(FAKE), torch.tensor(1.25))


def test_least_squares_losses_match_hand_computation_in_both_codings():
    # 0-1 coding a=0, b=1, c=1: 1/2 mean((r-1)^2) + 1/2 mean(f^2); G: 1/2 mean((f-1)^2)
    assert torch.isclose(losses.least_squares_discriminator_loss(REAL, FAKE), torch.tensor(0.5 * 2.5 + 0.5 * 4.625))
    assert torch.isclose(losses.least_squares_generator_loss(FAKE), torch.tensor(0.5 * (0.25 + 16.0) / 2))
    # Mao et al. Eq. 8 coding a=-1, b=1, c=0
    d = losses.least_squares_discriminator_loss(REAL, FAKE, real_target=1.0, fake_target=-1.0)
    assert torch.isclose(d, torch.tensor(0.5 * 2.5 + 0.5 * (2.25 + 4.0) / 2))
    assert torch.isclose(losses.least_squares_generator_loss(FAKE, target=0.0), torch.tensor(0.5 * 4.625))


def test_hinge_discriminator_loss_matches_hand_computation():
    # relu(1 - [2, -1]) = [0, 2]; relu(1 + [0.5, -3]) = [1.5, 0]
    assert torch.isclose(losses.hinge_discriminator_loss(REAL, FAKE), torch.tensor(1.0 + 0.75))


def test_hinge_ignores_scores_beyond_the_margin():
    confident = losses.hinge_discriminator_loss(torch.tensor([1.0, 5.0]), torch.tensor([-1.0, -7.0]))
    assert confident == 0


def test_one_sided_label_smoothing_moves_only_the_real_target():
    smoothed = losses.binary_cross_entropy_discriminator_loss(REAL, FAKE, one_sided_label_smoothing=0.1)
    # real target 0.9: -(0.9 log s(r) + 0.1 log(1 - s(r))) = 0.9 softplus(-r) + 0.1 softplus(r); fake term unchanged
    real = (0.9 * softplus(-2.0) + 0.1 * softplus(2.0) + 0.9 * softplus(1.0) + 0.1 * softplus(-1.0)) / 2
    fake = (softplus(0.5) + softplus(-3.0)) / 2
    assert torch.isclose(smoothed, torch.tensor(real + fake))
    # With smoothing, an infinitely confident D is no longer optimal on real data: the loss has a minimum at
    # logit log(0.9 / 0.1).
    logits = torch.linspace(0, 6, 601)
    per_logit = [losses.binary_cross_entropy_discriminator_loss(x.view(1), torch.full((1,), -50.0), 0.1) for x in logits]
    assert abs(logits[int(torch.stack(per_logit).argmin())].item() - math.log(9.0)) < 0.011


def test_feature_matching_loss_is_squared_distance_of_feature_means():
    real = torch.tensor([[1.0, 2.0], [3.0, 2.0]])  # mean [2, 2]
    fake = torch.tensor([[0.0, 0.0], [0.0, 1.0]])  # mean [0, 0.5]
    assert torch.isclose(losses.feature_matching_loss(real, fake), torch.tensor(4.0 + 2.25))
    assert losses.feature_matching_loss(real, real.flip(0)) == 0


def test_every_discriminator_loss_falls_as_d_separates_and_every_generator_loss_as_d_is_fooled():
    pairs = [
        (losses.binary_cross_entropy_discriminator_loss, losses.non_saturating_generator_loss),
        (losses.wasserstein_discriminator_loss, losses.wasserstein_generator_loss),
        (losses.least_squares_discriminator_loss, losses.least_squares_generator_loss),
        (losses.hinge_discriminator_loss, losses.wasserstein_generator_loss),
    ]
    for d_loss, g_loss in pairs:
        # For least squares "separated" means real scores at b=1 and fake at a=0.
        high, low = (torch.ones(4), torch.zeros(4)) if d_loss is losses.least_squares_discriminator_loss else (
            torch.full((4,), 3.0), torch.full((4,), -3.0))
        assert d_loss(high, low) < d_loss(low, high), d_loss.__name__
        assert g_loss(high) < g_loss(low), g_loss.__name__


# --- penalties ---

def linear_critic(weight: list[float], bias: float = 0.3) -> torch.nn.Module:
    critic = torch.nn.Linear(len(weight), 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([weight]))
        critic.bias.fill_(bias)
    return torch.nn.Sequential(critic, torch.nn.Flatten(0))


def test_gradient_penalty_equals_closed_form_for_a_linear_critic():
    # D(x) = w.x + b has gradient w everywhere, so the penalty is lambda (||w|| - 1)^2 whatever the interpolates.
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    for weight, expected in (([3.0, 4.0], 10 * (5.0 - 1) ** 2), ([0.6, 0.8], 0.0), ([0.3, 0.4], 10 * 0.25)):
        penalty = losses.gradient_penalty(linear_critic(weight), real, fake, weight=10.0)
        assert torch.isclose(penalty, torch.tensor(expected), atol=1e-5), weight


def test_gradient_penalty_is_zero_for_a_critic_with_unit_gradient_norm_everywhere():
    # D(x) = ||x - c|| is 1-Lipschitz with ||grad|| = 1 away from c; also for image-shaped inputs.
    center = torch.full((1, 1, 4, 4), 10.0)
    critic = lambda x: (x - center).flatten(1).norm(dim=1)  # noqa: E731
    real, fake = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4)
    assert losses.gradient_penalty(critic, real, fake, weight=10.0).abs() < 1e-6


def test_gradient_penalty_trains_the_critic():
    critic = linear_critic([3.0, 4.0])
    losses.gradient_penalty(critic, torch.randn(4, 2), torch.randn(4, 2)).backward()
    w = critic[0].weight
    # d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w|| = 16 w
    assert torch.allclose(w.grad, 16 * w.detach())


def test_r1_penalty_equals_closed_form_for_a_linear_critic():
    critic = linear_critic([3.0, 4.0])
    assert torch.isclose(losses.r1_penalty(critic, torch.randn(8, 2), torch.randn(8, 2), weight=10.0), torch.tensor(125.0))
