"""The PatchGAN discriminator of pix2pix and CycleGAN (Isola et al. 2017, Sec. 3.2.2; Zhu et al. 2017, Sec. 4).

It scores every overlapping N x N patch of its input as real or fake instead of the whole image: one score per
position of its output map, so the adversarial losses (mean over all entries) judge local texture, and the L1 / cycle
terms carry the low frequencies. The official ``NLayerDiscriminator`` (junyanz/pytorch-CycleGAN-and-pix2pix,
``models/networks.py``): a 4x4 stride-2 conv with LeakyReLU(0.2) and no norm, ``n_layers - 1`` more stride-2 convs
doubling the width (capped at 8x) with norm, one stride-1 conv, and a stride-1 conv to one channel. ``n_layers=3``
is the 70x70 PatchGAN; its receptive field is ``receptive_field(n_layers)`` pixels.
"""

import torch
from torch import Tensor, nn

from genlab.nets.init import normal_init

NORMS = {"batch": lambda c: nn.BatchNorm2d(c), "instance": lambda c: nn.InstanceNorm2d(c), "none": lambda c: nn.Identity()}


def norm_layer(kind: str, channels: int) -> nn.Module:
    """BatchNorm (pix2pix), InstanceNorm without affine parameters (CycleGAN, as the official code) or none."""
    if kind not in NORMS:
        raise ValueError(f"norm must be one of {sorted(NORMS)}, got {kind!r}.")
    return NORMS[kind](channels)


def receptive_field(n_layers: int) -> int:
    """Side of the input patch one output score sees: 70 for n_layers=3, 34 for 2, 16 for 1."""
    size = 1
    for stride in [1, 1] + [2] * n_layers:  # from the output back: two stride-1 4x4 convs, then the strided ones
        size = (size - 1) * stride + 4
    return size


class PatchGANDiscriminator(nn.Module):
    """Images (N, in_channels, H, W) -> patch scores (N, 1, H', W') (logits or critic values).

    ``in_channels`` is what it judges: the target image alone (CycleGAN) or source and target concatenated
    (pix2pix's conditional D, ``in_channels = source_channels + channels``).
    """

    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"PatchGAN n_layers must be >= 1 (3 = the 70x70 PatchGAN), got {n_layers}.")
        self.in_channels = in_channels
        self.n_layers = n_layers
        bias = norm != "batch"  # BatchNorm's shift makes a conv bias redundant (as the official code)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        channels = width
        for i in range(1, n_layers + 1):
            out = width * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(channels, out, 4, stride, 1, bias=bias), norm_layer(norm, out), nn.LeakyReLU(0.2, True)]
            channels = out
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels, 1, 4, 1, 1)
        normal_init(self)  # N(0, 0.02), as init_type='normal' in the official code

    def features(self, x: Tensor) -> Tensor:
        """The last hidden feature maps, pooled: (N, F)."""
        return self.trunk(x).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"PatchGANDiscriminator expects (N, {self.in_channels}, H, W) images, got {tuple(x.shape)}.")
        return self.head(self.trunk(x))

    @torch.no_grad()
    def output_size(self, image_size: int) -> int:
        """Side of the score map for an image_size x image_size input."""
        return self.forward(torch.zeros(1, self.in_channels, image_size, image_size)).shape[-1]
