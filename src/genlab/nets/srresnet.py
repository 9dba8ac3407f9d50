"""SRGAN's networks (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a GAN", Fig. 4).

Generator (SRResNet): a 9x9 conv + PReLU, ``blocks`` residual blocks (conv3x3-BN-PReLU-conv3x3-BN, identity skip),
a conv3x3-BN closed by a skip from the first layer, then one sub-pixel stage per factor 2 of the scale (conv3x3 to 4x
the width, PixelShuffle(2), PReLU; Shi et al. 2016) and a 9x9 conv to the image. The paper: 16 blocks, 64 channels,
two stages (4x). It works at the low resolution until the last stages, so its cost grows with the LR image, not the HR.

Discriminator: a VGG-style stack of 3x3 convs with LeakyReLU(0.2), the width doubling from 64 to 512 and a stride-2
conv halving the resolution at each width (no pooling), BatchNorm after every conv but the first, then a dense
layer of 1024 units, LeakyReLU(0.2) and a dense layer to one logit (the paper's sigmoid is in the loss).
"""

import math

from torch import Tensor, nn


def upsampling_stages(scale_factor: int) -> int:
    """Number of PixelShuffle(2) stages for ``scale_factor`` (2 -> 1, 4 -> 2, 8 -> 3)."""
    stages = math.log2(scale_factor) if scale_factor >= 2 else 0.5
    if not float(stages).is_integer():
        raise ValueError(
            f"SRResNet upsamples in PixelShuffle x2 stages: the scale factor must be 2, 4 or 8 (a power of two), got "
            f"{scale_factor}. Set data.scale_factor (the presets read model.scale_factor from it)."
        )
    return int(stages)


class ResidualBlock(nn.Module):
    """conv3x3-BN-PReLU-conv3x3-BN plus the input, nothing after the sum (Gross & Wilber's residual block, as the paper)."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.PReLU(width),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """Low-resolution images (N, in_channels, h, w) in [-1, 1] -> (N, out_channels, h * scale, w * scale).

    The input is mapped to [0, 1], the paper's LR range; the output is the last conv's (HR range [-1, 1], no
    activation, as in Fig. 4), so the MSE content loss sees the paper's intensities. Fully convolutional: any LR size.
    """

    def __init__(self, in_channels: int, out_channels: int, scale_factor: int = 4, width: int = 64, blocks: int = 16):
        super().__init__()
        if blocks < 1 or width < 1:
            raise ValueError(f"SRResNet needs blocks >= 1 and width >= 1, got blocks={blocks}, width={width}.")
        self.in_channels, self.out_channels, self.scale_factor = in_channels, out_channels, scale_factor
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, 9, padding=4), nn.PReLU(width))
        self.body = nn.Sequential(
            *(ResidualBlock(width) for _ in range(blocks)), nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width)
        )
        stages = [
            nn.Sequential(nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(width))
            for _ in range(upsampling_stages(scale_factor))
        ]
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Conv2d(width, out_channels, 9, padding=4)

    def forward(self, low_resolution: Tensor) -> Tensor:
        if low_resolution.dim() != 4 or low_resolution.shape[1] != self.in_channels:
            raise ValueError(f"SRResNet expects (N, {self.in_channels}, h, w) images, got {tuple(low_resolution.shape)}.")
        features = self.head((low_resolution + 1) / 2)
        return self.tail(self.upsample(features + self.body(features)))


class SRGANDiscriminator(nn.Module):
    """HR images (N, in_channels, image_size, image_size) -> one logit per image (N,).

    ``width`` is the first conv's channels (64); the four widths are width, 2, 4 and 8 times it, each a stride-1 and
    a stride-2 conv, so ``image_size`` must be divisible by 16 (96 px crops in the paper: a 6x6x512 map before the
    dense layers). ``features(x)`` is the 1024-unit hidden layer.
    """

    def __init__(self, in_channels: int, image_size: int, width: int = 64, dense: int = 1024):
        super().__init__()
        if image_size % 16:
            raise ValueError(
                f"SRGANDiscriminator halves the image four times: data.image_size must be divisible by 16, got {image_size}."
            )
        self.in_channels = in_channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        channels = width
        for level in range(4):
            out = width * 2**level
            for stride in ((2,) if level == 0 else (1, 2)):  # 64 s2, 128 s1, 128 s2, ..., 512 s2 (Fig. 4)
                layers += [nn.Conv2d(channels, out, 3, stride, 1, bias=False), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, inplace=True)]
                channels = out
        self.trunk = nn.Sequential(*layers)
        side = image_size // 16
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, dense), nn.LeakyReLU(0.2, inplace=True))
        self.head = nn.Linear(dense, 1)

    def features(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SRGANDiscriminator expects (N, {self.in_channels}, H, W) images, got {tuple(x.shape)}.")
        return self.hidden(self.trunk(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).squeeze(1)
