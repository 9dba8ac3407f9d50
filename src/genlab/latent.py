"""Latent-space math, free of models: interpolation paths and DCGAN's concept arithmetic.

Linear interpolation (lerp) walks the chord between two latents. For a Gaussian prior in d dimensions that chord
leaves the data: draws of N(0, I) concentrate on a thin shell of radius about sqrt(d), and the chord's midpoint
between two (nearly orthogonal) draws has norm about sqrt(d / 2), a region the generator was rarely fed in
training. Spherical interpolation (slerp) follows the great circle instead and keeps the norm, which White 2016
("Sampling Generative Networks", Sec. 2.1) recommends for Gaussian and uniform priors alike.

Vector arithmetic is Radford et al. 2016 (DCGAN), Sec. 6.3: single exemplars were unstable, the mean latent of
three exemplars per concept was not; ``mean(a) - mean(b) + mean(c)`` is decoded, and uniform noise of scale 0.25
around the result shows its neighbourhood (their Fig. 7).
"""

import torch
from torch import Tensor

METHODS = ("linear", "spherical")


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Points ``(1 - t) a + t b`` for ``a``, ``b`` (..., D) and fractions ``t`` (S,): shape (..., S, D). Written
    with both weights so that t = 0 and t = 1 give the endpoints exactly."""
    t = t.to(a)[:, None]
    return (1 - t) * a.unsqueeze(-2) + t * b.unsqueeze(-2)


def slerp(a: Tensor, b: Tensor, t: Tensor, eps: float = 1e-7) -> Tensor:
    """White 2016's slerp: ``sin((1 - t) omega) / sin(omega) a + sin(t omega) / sin(omega) b``, omega the angle
    between ``a`` and ``b`` (..., D); fractions ``t`` (S,); shape (..., S, D). Unit vectors stay unit vectors;
    other norms are blended smoothly. Where the great circle is undefined (``a`` and ``b`` parallel or
    antiparallel, sin(omega) ~ 0) it falls back to lerp, as White's reference code does."""
    t = t.to(a)[:, None]
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=eps).clamp(-1, 1)
    omega = torch.arccos(cos)[..., None, None]
    sin = torch.sin(omega)
    degenerate = sin.abs() < eps
    safe = torch.where(degenerate, torch.ones_like(sin), sin)
    spherical = (torch.sin((1 - t) * omega) / safe) * a.unsqueeze(-2) + (torch.sin(t * omega) / safe) * b.unsqueeze(-2)
    return torch.where(degenerate, lerp(a, b, t[:, 0]), spherical)


def interpolate(a: Tensor, b: Tensor, steps: int, method: str) -> Tensor:
    """``steps`` evenly spaced points from each row of ``a`` (P, D) to the same row of ``b``, endpoints included,
    flattened row-major to (P * steps, D): one grid row per pair."""
    if method not in METHODS:
        raise ValueError(f"interpolation method {method!r} is unknown; choose from {list(METHODS)}.")
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps (its two endpoints), got steps={steps}.")
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"interpolate(a, b) needs two (P, D) batches of latents, got {tuple(a.shape)} and {tuple(b.shape)}.")
    t = torch.linspace(0, 1, steps)
    path = lerp(a, b, t) if method == "linear" else slerp(a, b, t)
    return path.reshape(-1, a.shape[1])


def concept_arithmetic(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """DCGAN's ``mean(a) - mean(b) + mean(c)`` over the exemplar latents (N_a, D), (N_b, D), (N_c, D): (D,)."""
    return a.mean(0) - b.mean(0) + c.mean(0)


def neighbourhood(y: Tensor, n: int, scale: float, generator: torch.Generator | None = None) -> Tensor:
    """``n`` points ``y + u``, u uniform in [-scale, scale]^D (Radford et al. 2016, Fig. 7: scale 0.25), (n, D)."""
    noise = (torch.rand(n, y.shape[-1], generator=generator) * 2 - 1) * scale
    return y.unsqueeze(0) + noise.to(y)
