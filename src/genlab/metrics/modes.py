"""Mode coverage of samples from a Gaussian mixture: the 2-D ring/grid protocol of VEEGAN and PacGAN.

A sample is *high quality* when it lies within ``threshold`` standard deviations of its nearest mode (VEEGAN: 3,
Mahalanobis distance with the mixture's isotropic std). A mode is *covered* when it is the nearest mode of at
least one high-quality sample. PacGAN adds the reverse KL divergence KL(p || uniform) of the histogram p of
high-quality samples over the modes: 0 when they spread evenly, log(K) when all sit on one of the K modes.
"""

import math

import torch
from torch import Tensor
from torchmetrics import Metric

from genlab.metrics.divergences import kl_to_uniform


class ModeCoverage(Metric):
    """``update(samples (N, dim))`` accumulates the mode histogram; ``compute()`` returns
    ``{"modes": modes covered, "high_quality": fraction of high-quality samples, "reverse_kl": KL(p || uniform)}``.

    The mixture comes from ``centers`` and ``std`` or, through the ``SampleMetrics`` callback, from
    :meth:`prepare` with a datamodule that has ``centers`` and ``std`` (``genlab.data.toy``). With no high-quality
    sample at all, ``reverse_kl`` is log(K), the value of total collapse onto one mode.
    """

    higher_is_better = None  # modes and high_quality: higher; reverse_kl: lower
    full_state_update = False

    def __init__(self, centers: Tensor | None = None, std: float | None = None, threshold: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        self.threshold = threshold
        self.add_state("total", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.centers: Tensor | None = None
        self.std: float | None = None
        if centers is not None:
            if std is None:
                raise ValueError("ModeCoverage needs the std of the mixture components along with their centers.")
            self.set_mixture(centers, std)

    def prepare(self, datamodule) -> None:
        """Take the mixture from the datamodule (called once by ``SampleMetrics`` before training)."""
        if not hasattr(datamodule, "centers") or not hasattr(datamodule, "std"):
            raise ValueError(
                f"metrics=modes scores samples of a Gaussian mixture, but {type(datamodule).__name__} has no "
                "centers/std. Use it with point data (data=ring8 or data=grid25)."
            )
        self.set_mixture(datamodule.centers, datamodule.std)

    def set_mixture(self, centers: Tensor, std: float) -> None:
        self.centers = torch.as_tensor(centers, dtype=torch.float32, device=self.device)
        self.std = float(std)
        self.add_state("counts", default=torch.zeros(len(self.centers), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, samples: Tensor) -> None:
        if self.centers is None:
            raise RuntimeError(
                "ModeCoverage has no mixture to score against: pass centers= and std=, or call prepare(datamodule) "
                "(SampleMetrics does) with data=ring8 or data=grid25."
            )
        if samples.dim() != 2 or samples.shape[1] != self.centers.shape[1]:
            raise ValueError(
                f"ModeCoverage scores points of shape (N, {self.centers.shape[1]}), got samples of shape "
                f"{tuple(samples.shape)}: the model does not generate points of this mixture."
            )
        distances = torch.cdist(samples.float(), self.centers.to(samples.device))
        nearest_distance, nearest = distances.min(dim=1)
        high_quality = nearest_distance <= self.threshold * self.std
        self.counts += torch.bincount(nearest[high_quality], minlength=len(self.centers))
        self.total += samples.shape[0]

    def compute(self) -> dict[str, Tensor]:
        num_modes = len(self.centers)
        hq = self.counts.sum()
        # No high-quality sample: scored as total collapse (log K), the worst value, not as undefined.
        reverse_kl = kl_to_uniform(self.counts) if hq > 0 else torch.tensor(math.log(num_modes), device=self.counts.device)
        return {
            "modes": (self.counts > 0).sum().float(),
            "high_quality": hq.float() / self.total.clamp(min=1),
            "reverse_kl": reverse_kl,
        }
