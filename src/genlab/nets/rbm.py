"""The Bernoulli-Bernoulli restricted Boltzmann machine as a plain module: parameters, conditionals, free energy.

E(v, h) = -b.v - c.h - v W h over binary v in {0, 1}^V and h in {0, 1}^H; p(v, h) = exp(-E) / Z. The bipartite
graph makes both conditionals factorise, p(h_j = 1 | v) = sigmoid(c_j + (v W)_j) and
p(v_i = 1 | h) = sigmoid(b_i + (W h)_i), and summing h out gives the free energy
F(v) = -b.v - sum_j softplus(c_j + (v W)_j), with p(v) = exp(-F(v)) / Z. Training and log Z live in
:mod:`genlab.models.rbm`; this module knows nothing about them.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: the largest hidden layer whose log Z is computed exactly (2^20 hidden states, summed in chunks)
EXACT_MAX_HIDDEN = 20


def bernoulli(probabilities: Tensor, generator: torch.Generator | None) -> Tensor:
    """Binary states with the given probabilities. Uniforms are drawn on the CPU from ``generator``, so a seed gives
    the same states on any device."""
    uniform = torch.rand(probabilities.shape, generator=generator).to(probabilities.device)
    return (uniform < probabilities).to(probabilities.dtype)


class BernoulliRBM(nn.Module):
    """``visible`` x ``hidden`` binary RBM: ``weight`` W (V, H) ~ N(0, init_std) (Hinton 2010, "A Practical Guide to
    Training RBMs", Sec. 8: 0.01), zero biases ``visible_bias`` b (V,) and ``hidden_bias`` c (H,)."""

    def __init__(self, visible: int, hidden: int, init_std: float = 0.01):
        super().__init__()
        if visible < 1 or hidden < 1:
            raise ValueError(f"an RBM needs at least one visible and one hidden unit, got visible={visible}, hidden={hidden}.")
        self.visible, self.hidden = visible, hidden
        self.weight = nn.Parameter(torch.randn(visible, hidden) * init_std)
        self.visible_bias = nn.Parameter(torch.zeros(visible))
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))

    def hidden_probabilities(self, v: Tensor) -> Tensor:
        return torch.sigmoid(self.hidden_bias + v @ self.weight)

    def visible_probabilities(self, h: Tensor) -> Tensor:
        return torch.sigmoid(self.visible_bias + h @ self.weight.T)

    def gibbs_step(self, v: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """One block Gibbs sweep v -> h ~ p(h | v) -> v' ~ p(v | h); returns (v', p(v | h)), the new state and its mean."""
        h = bernoulli(self.hidden_probabilities(v), generator)
        mean = self.visible_probabilities(h)
        return bernoulli(mean, generator), mean

    def free_energy(self, v: Tensor) -> Tensor:
        """F(v) = -b.v - sum_j softplus(c_j + (v W)_j), one value per row of ``v`` (N, V)."""
        return -v @ self.visible_bias - F.softplus(self.hidden_bias + v @ self.weight).sum(1)

    @torch.no_grad()
    def exact_log_partition(self, chunk: int = 4096) -> Tensor:
        """log Z by summing the visible units out analytically and enumerating all 2^H hidden states:
        log Z = logsumexp_h [c.h + sum_i softplus(b_i + (W h)_i)]. Only for H <= EXACT_MAX_HIDDEN."""
        if self.hidden > EXACT_MAX_HIDDEN:
            raise ValueError(
                f"exact log Z enumerates 2^hidden states; hidden={self.hidden} > {EXACT_MAX_HIDDEN}. Use the AIS estimate "
                "(genlab.models.rbm.ais_log_partition) for larger RBMs."
            )
        bits = 2 ** torch.arange(self.hidden, device=self.weight.device)
        terms = []
        for start in range(0, 2**self.hidden, chunk):
            index = torch.arange(start, min(start + chunk, 2**self.hidden), device=self.weight.device)
            h = ((index[:, None] & bits) > 0).to(self.weight.dtype)
            terms.append(h @ self.hidden_bias + F.softplus(self.visible_bias + h @ self.weight.T).sum(1))
        return torch.logsumexp(torch.cat(terms).double(), 0)

