"""Divergences of histograms that several metrics report.

Class coverage (a classifier's predictions on MNIST samples) and mode coverage (the 2-D ring/grid protocol) both
ask how far a histogram of samples over K bins is from spreading evenly. They share :func:`kl_to_uniform`, so the
two dashboards' numbers mean the same thing.
"""

import torch
from torch import Tensor


def kl_to_uniform(counts: Tensor) -> Tensor:
    """KL(p || uniform) in nats of the histogram ``counts`` (K bins, non-negative), with p = counts / counts.sum().

    ``sum_k p_k log(p_k K)``: 0 for a perfectly even histogram, log(K) when every sample is in one bin; empty bins
    contribute 0 (the limit p log p -> 0). With a mixture's modes as bins this is the "reverse KL" of PacGAN
    (Lin et al. 2018, 2-D mixture experiments). Computed in float64, returned as float32 on ``counts``' device.
    An empty histogram has no distribution: the caller decides what that means.
    """
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(f"kl_to_uniform needs a 1-D histogram with at least one bin, got shape {tuple(counts.shape)}.")
    if (counts < 0).any():
        raise ValueError(f"kl_to_uniform needs non-negative counts, got {counts.tolist()}.")
    total = counts.sum()
    if total == 0:
        raise ValueError("kl_to_uniform of an empty histogram (all counts 0) is undefined.")
    p = counts.double() / total
    present = p[p > 0]
    return (present * (present * counts.numel()).log()).sum().float()
