"""The last layers of every discriminator: an optional minibatch-discrimination layer, then one score per sample.

Discriminators are split into ``features(x) -> (N, F)`` (everything up to the last hidden layer) and ``head`` so
that training tricks can reach the features (feature matching, Salimans et al. 2016, Sec. 3.1) and the head can
grow a minibatch-discrimination layer (Sec. 3.2) without a new discriminator class.
"""

import torch
from torch import nn


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016, Sec. 3.2: lets D compare each sample with the rest of its minibatch.

    f(x_i) in R^A is multiplied by a tensor T in R^{A x B x C} into M_i in R^{B x C};
    c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_L1), o(x_i)_b = sum_{j != i} c_b(x_i, x_j), and the layer outputs
    [f(x_i), o(x_i)] in R^{A + B}. A collapsed generator makes the o(x) of fakes large, which D can then detect.
    (The paper's sum includes j = i, a constant exp(0) = 1; it is left out here, as in its released code.)
    """

    def __init__(self, in_features: int, num_kernels: int, kernel_dim: int = 5):
        super().__init__()
        self.num_kernels = num_kernels
        self.kernel_dim = kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, num_kernels * kernel_dim) * 0.1)

    @property
    def out_features(self) -> int:
        return self.T.shape[0] + self.num_kernels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        m = (features @ self.T).view(-1, self.num_kernels, self.kernel_dim)  # (N, B, C)
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3)  # (N, N, B)
        closeness = torch.exp(-l1).sum(1) - 1.0  # drop the j = i term
        return torch.cat([features, closeness], dim=1)


def score_head(in_features: int, minibatch_discrimination: int = 0) -> nn.Sequential:
    """``features (N, in_features) -> (N, 1)``: a linear score, behind a minibatch-discrimination layer with
    ``minibatch_discrimination`` kernels when it is > 0 (Salimans et al. 2016 used 100 kernels of dimension 5)."""
    if minibatch_discrimination < 0:
        raise ValueError(f"minibatch_discrimination is a number of kernels (0 = off), got {minibatch_discrimination}.")
    if minibatch_discrimination == 0:
        return nn.Sequential(nn.Linear(in_features, 1))
    minibatch = MinibatchDiscrimination(in_features, minibatch_discrimination)
    return nn.Sequential(minibatch, nn.Linear(minibatch.out_features, 1))
