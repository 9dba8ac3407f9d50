"""The ResNet generator of CycleGAN (Zhu et al. 2017, Appendix 7.2; Johnson et al. 2016's transformation network).

The official ``ResnetGenerator`` (junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``), in the paper's
notation: c7s1-w, d2w, d4w, ``n_blocks`` x R4w, u2w, uw, c7s1-out, Tanh. c7s1-k is a reflection-padded 7x7 conv
with k filters, stride 1, then InstanceNorm and ReLU; dk a 3x3 stride-2 conv, InstanceNorm, ReLU; Rk a residual
block of two reflection-padded 3x3 convs (InstanceNorm, ReLU between them, InstanceNorm after the second); uk a 3x3
stride-1/2 transposed conv, InstanceNorm, ReLU. InstanceNorm without affine parameters and conv biases, as the
official code (``norm='instance'``, ``use_bias=True`` for InstanceNorm); N(0, 0.02) init (``init_type='normal'``).

Block count: the paper uses 6 blocks at 128x128 and 9 at 256x256 and above (Appendix 7.2). ``n_blocks=None``
applies that rule to ``image_size``, and below 128 px uses 3: at 32 px the blocks work on 8x8 maps, and with 3 of
them one output pixel already sees 79x79 input pixels (:func:`receptive_field`), more than twice the image, so more
blocks add depth, not context; 3 keeps the 32-px CPU demo in minutes.
"""

from torch import Tensor, nn

from genlab.nets.init import normal_init
from genlab.nets.patchgan import norm_layer

DOWNSAMPLINGS = 2  # d2w, d4w: the image side must be divisible by 2**2


def paper_block_count(image_size: int) -> int:
    """Zhu et al. 2017, Appendix 7.2: 9 residual blocks at >= 256 px, 6 at 128 px; 3 below (see the module notes)."""
    if image_size >= 256:
        return 9
    if image_size >= 128:
        return 6
    return 3


def receptive_field(n_blocks: int) -> int:
    """Side of the input patch one output pixel depends on: 31 + 16 * n_blocks (175 for 9 blocks, 127 for 6)."""
    size, jump = 1, 1
    # (kernel, stride) from the input on: c7s1, two stride-2 3x3 convs, 2 convs per block at 1/4 resolution, two
    # stride-2 3x3 transposed convs (each widens the field like a 3x3 conv at the coarser resolution), c7s1
    layers = [(7, 1), (3, 2), (3, 2), *[(3, 1)] * (2 * n_blocks)]
    for kernel, stride in layers:
        size += (kernel - 1) * jump
        jump *= stride
    for _ in range(DOWNSAMPLINGS):
        size += 2 * jump
        jump //= 2
    return size + 6


class ResidualBlock(nn.Module):
    """x + [pad, conv3x3, norm, ReLU, pad, conv3x3, norm](x): the official ``ResnetBlock`` with reflection padding."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            norm_layer(norm, channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            norm_layer(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Images (N, in_channels, H, W) -> images (N, out_channels, H, W) in [-1, 1]; H and W divisible by 4.

    Fully convolutional, so it translates any size divisible by 4; ``image_size`` (the training size) only picks
    the paper's block count when ``n_blocks`` is ``None``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        image_size: int,
        width: int = 64,
        n_blocks: int | None = None,
        norm: str = "instance",
    ):
        super().__init__()
        n_blocks = paper_block_count(image_size) if n_blocks is None else n_blocks
        if n_blocks < 0:
            raise ValueError(f"ResnetGenerator n_blocks must be >= 0 (null: the paper's count for the size), got {n_blocks}.")
        if image_size % 2**DOWNSAMPLINGS:
            raise ValueError(
                f"ResnetGenerator downsamples twice by 2, so the image size must be divisible by 4; got "
                f"image_size={image_size}. Set data.image_size to a multiple of 4 (e.g. {image_size // 4 * 4 or 4})."
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.n_blocks = n_blocks

        def unit(conv: nn.Module, channels: int) -> list[nn.Module]:
            return [conv, norm_layer(norm, channels), nn.ReLU(True)]

        layers = [nn.ReflectionPad2d(3), *unit(nn.Conv2d(in_channels, width, 7), width)]
        channels = width
        for _ in range(DOWNSAMPLINGS):
            layers += unit(nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1), 2 * channels)
            channels *= 2
        layers += [ResidualBlock(channels, norm) for _ in range(n_blocks)]
        for _ in range(DOWNSAMPLINGS):
            up = nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1)
            layers += unit(up, channels // 2)
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        normal_init(self)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(
                f"ResnetGenerator expects (N, {self.in_channels}, H, W) images with H and W divisible by 4, "
                f"got {tuple(x.shape)}."
            )
        return self.net(x)
