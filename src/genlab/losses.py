"""Adversarial losses as pure functions of discriminator outputs.

Convention: every function returns a loss that its player *minimises*. Discriminator losses take the raw
discriminator outputs (logits / critic values) on a real and a fake batch; generator losses take the outputs on a
fake batch. A GAN variant picks one of each in ``conf/model/loss/``.

Penalties (``gradient_penalty``, ``r1_penalty``) share the signature ``penalty(critic, real, fake)`` (``critic``: the
discriminator as a function of samples, labels bound for conditional models) and are
added to the discriminator's loss; a model lists them under ``model.penalties`` (``conf/model/penalties/``).
"""

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def plain(fn: Callable) -> Callable:
    """A loss or penalty as a plain ``functools.partial`` when Hydra built it (``_partial_: true``) from a genlab
    function; anything else unchanged.

    hydra-core 1.3.8 hands out such partials as a subclass that checks the target against its security policy again on
    every call: ~0.7 ms a call on these 2-core CPUs, 15 % of a toy GAN's batch. A genlab function passed that check
    when it was instantiated; a target from elsewhere keeps Hydra's check."""
    if (
        isinstance(fn, functools.partial)
        and type(fn) is not functools.partial
        and getattr(fn.func, "__module__", "").startswith("genlab.")
    ):
        return functools.partial(fn.func, *fn.args, **fn.keywords)
    return fn


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


def wasserstein_drift_discriminator_loss(real_scores: Tensor, fake_scores: Tensor, drift: float = 0.001) -> Tensor:
    """Karras et al. 2018 (ProGAN), App. A.1: the critic loss of :func:`wasserstein_discriminator_loss` plus
    drift * E[D(x)^2] on real data (epsilon_drift = 0.001), which keeps the critic's output from drifting far from
    zero. It is a term of the loss, not a penalty, because it needs only the real scores the loss already has."""
    return wasserstein_discriminator_loss(real_scores, fake_scores) + drift * real_scores.square().mean()


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


# -- conditional GANs ------------------------------------------------------------------------------------------------
def auxiliary_classifier_discriminator_loss(
    real_class_logits: Tensor, real_labels: Tensor, fake_class_logits: Tensor, fake_labels: Tensor
) -> Tensor:
    """Odena et al. 2017 (ACGAN), Eqs. 2-3: D maximises L_S + L_C with the log-likelihood of the correct class
    L_C = E[log P(C = c | X_real)] + E[log P(C = c | X_fake)]; its classification loss is -L_C, i.e.
    CE(real) + CE(fake) over the K-way head (batch means). The fakes' class is the one they were generated for.
    Added to the adversarial loss (which is -L_S for the cross-entropy losses) with the scheme's weight."""
    return F.cross_entropy(real_class_logits, real_labels) + F.cross_entropy(fake_class_logits, fake_labels)


def auxiliary_classifier_generator_loss(fake_class_logits: Tensor, fake_labels: Tensor) -> Tensor:
    """Odena et al. 2017 (ACGAN), Sec. 3: G maximises L_C - L_S. Only L_C's fake term depends on G, so its
    classification loss is CE(fake): G is pushed to make samples D classifies as the class they were made for.
    (The -L_S part is the adversarial generator loss, non-saturating in practice.)"""
    return F.cross_entropy(fake_class_logits, fake_labels)


# -- latent codes and semi-supervised discriminators ------------------------------------------------------------------
def categorical_code_loss(code_logits: Tensor, codes: Tensor) -> Tensor:
    """InfoGAN (Chen et al. 2016, Sec. 5, the lower bound L_I) for a categorical code: -E[log Q(c | G(z, c))], the
    cross-entropy of Q's logits (N, K) against the code values (N,) the fakes were made from.

    L_I = E[log Q(c|x)] + H(c) is a lower bound on the mutual information I(c; G(z, c)); H(c) is fixed by the prior,
    so minimising this loss (G and Q both do) maximises the bound. For a uniform K-way code the bound is
    log K - loss nats: log K means Q reads the code perfectly, 0 (loss = log K) means it reads nothing.
    """
    return F.cross_entropy(code_logits, codes)


def gaussian_code_loss(mean: Tensor, log_std: Tensor, codes: Tensor) -> Tensor:
    """InfoGAN (Chen et al. 2016, Sec. 6) for continuous codes: -E[log Q(c | G(z, c))] with Q a factored Gaussian,
    N(mean_j, exp(log_std_j)^2) per code dimension j, summed over the dimensions and averaged over the batch.

    A log-likelihood, not a squared error: with a learnt log-std, Q also says how sure it is. With log_std = 0 it
    is 1/2 MSE + 1/2 log(2 pi) per dimension: the fixed-std Q of the openai/InfoGAN MNIST experiment
    (``CodeHead(learn_std=False)``), whose gain is bounded; a learnt std makes it unbounded (log 1/std).
    """
    nll = 0.5 * math.log(2 * math.pi) + log_std + 0.5 * ((codes - mean) * torch.exp(-log_std)).square()
    return nll.sum(1).mean()


def real_logit_from_class_logits(class_logits: Tensor) -> Tensor:
    """Salimans et al. 2016 ("Improved Techniques for Training GANs"), Sec. 5: a K-class discriminator with logits
    l_1..l_K becomes a K+1-class one by fixing the logit of the "fake" class at 0. Then
    D(x) = 1 - p(fake | x) = Z(x) / (Z(x) + 1) with Z(x) = sum_k exp(l_k), i.e. D(x) = sigmoid(log Z(x)).

    Returns log Z(x) = logsumexp(l) (N,): a real-vs-fake logit, so the ordinary GAN losses
    (:func:`binary_cross_entropy_discriminator_loss`, :func:`non_saturating_generator_loss`) give the paper's
    unsupervised loss -E log D(x) - E log(1 - D(G(z))) unchanged.
    """
    return torch.logsumexp(class_logits, dim=1)


def supervised_class_loss(class_logits: Tensor, labels: Tensor) -> Tensor:
    """Salimans et al. 2016, Sec. 5: L_supervised = -E[log p(y | x, y < K+1)] on labelled real images. With the fake
    logit fixed at 0, p(y | x, y < K+1) is the softmax over the K class logits alone, so this is their cross-entropy."""
    return F.cross_entropy(class_logits, labels)


def l1_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error: pix2pix's L1 term (Isola et al. 2017, Eq. 3), CycleGAN's cycle-consistency and identity
    terms (Zhu et al. 2017, Eq. 2 and Sec. 5.2) and StarGAN's reconstruction term (Choi et al. 2018, Eq. 4)."""
    return (output - target).abs().mean()


def domain_classification_loss(domain_logits: Tensor, domains: Tensor) -> Tensor:
    """StarGAN's domain-classification loss (Choi et al. 2018, Eq. 2-3): cross-entropy for one domain per image
    (int64 ids (N,), e.g. RaFD or mnist_domains) or, for attribute vectors (float 0/1 (N, A), CelebA), the sum over
    attributes of binary cross-entropy, averaged over the batch (the official ``classification_loss``)."""
    if domains.dtype == torch.long and domains.dim() == 1:
        return F.cross_entropy(domain_logits, domains)
    return F.binary_cross_entropy_with_logits(domain_logits, domains.float(), reduction="sum") / len(domain_logits)


def began_discriminator_loss(real_energy: Tensor, fake_energy: Tensor, k: Tensor | float) -> Tensor:
    """Berthelot et al. 2017 (BEGAN), Eq. 4 for the autoencoder D: L(x) - k_t L(G(z)), with L(v) = |v - D(v)| the
    per-sample reconstruction energies and k_t in [0, 1] the equilibrium control's weight (held by the model)."""
    return real_energy.mean() - k * fake_energy.mean()


def began_generator_loss(fake_energy: Tensor) -> Tensor:
    """Berthelot et al. 2017 (BEGAN), Eq. 4 for G: L(G(z)), the autoencoder's energy on the fakes."""
    return fake_energy.mean()
