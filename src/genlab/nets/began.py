"""BEGAN nets (Berthelot, Schumm & Metz 2017, "BEGAN: Boundary Equilibrium Generative Adversarial Networks",
Sec. 3.5 and Fig. 1): an autoencoder discriminator, and a generator with the architecture of its decoder.

* Encoder: a 3x3 conv, then ``blocks`` blocks of two 3x3 convs; between blocks a stride-2 3x3 conv halves the size
  and the widths grow linearly (n, 2n, 3n, ...); a linear map to the embedding h (``hidden_dim`` = N_h).
* Decoder (and generator): a linear map from h (or z) to n maps of 8x8, then ``blocks`` blocks of two 3x3 convs
  with nearest-neighbour 2x upsampling between them, and a 3x3 conv to the image channels.
* ELU after every conv except the output conv; the linear maps to and from h have no nonlinearity; the output is
  linear too (the images the scheme compares live in [-1, 1], the outputs are not squashed into it).

The paper keeps "a constant final down-sampled image size of 8x8" and adds or removes conv layers for the resolution
(64 px: 4 blocks, 32 px: 3), so ``image_size`` fixes the depth; n = 64 or 128 and N_h = N_z = 64 in the paper.
"""

import math

from torch import Tensor, nn

BASE_SIZE = 8  # the paper's fixed 8x8 size at the embedding, whatever the resolution


def _blocks(image_size: int) -> int:
    """Conv blocks for ``image_size``: one per resolution from 8x8 up to it (8: 1, 16: 2, 32: 3, 64: 4, ...)."""
    doublings = math.log2(image_size / BASE_SIZE) if image_size > 0 else -1.0
    if doublings < 0 or not doublings.is_integer():
        raise ValueError(
            f"BEGAN nets need image_size = 8 * 2^k (8, 16, 32, 64, 128, ...): the embedding side is the paper's 8x8. "
            f"Got {image_size}; set data.image_size to one of those (data=mnist5k is 32 px)."
        )
    return int(doublings) + 1


def _conv(n_in: int, n_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(n_in, n_out, 3, stride, 1), nn.ELU(inplace=True))


class BEGANDecoder(nn.Module):
    """Code (N, latent_dim) -> image (N, channels, image_size, image_size). As the generator it maps z to images;
    inside :class:`BEGANDiscriminator` it decodes the embedding h. ``width`` is n, the maps of every conv."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int = 64):
        super().__init__()
        self.latent_dim, self.width = latent_dim, width
        blocks = _blocks(image_size)
        self.project = nn.Linear(latent_dim, width * BASE_SIZE * BASE_SIZE)
        layers: list[nn.Module] = []
        for index in range(blocks):
            layers += [_conv(width, width), _conv(width, width)]
            if index < blocks - 1:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.body = nn.Sequential(*layers, nn.Conv2d(width, channels, 3, 1, 1))

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """``labels`` is accepted for the generator contract and ignored: these nets are unconditional."""
        return self.body(self.project(z).view(len(z), self.width, BASE_SIZE, BASE_SIZE))


class BEGANEncoder(nn.Module):
    """Image -> embedding h (N, hidden_dim); widths n, 2n, ..., blocks * n, downsampled by stride-2 convs to 8x8."""

    def __init__(self, channels: int, image_size: int, width: int = 64, hidden_dim: int = 64):
        super().__init__()
        blocks = _blocks(image_size)
        layers: list[nn.Module] = [_conv(channels, width)]
        for index in range(blocks):
            n_in, n_out = width * max(index, 1), width * (index + 1)
            layers += [_conv(n_in, n_out), _conv(n_out, n_out)]
            if index < blocks - 1:
                layers.append(_conv(n_out, n_out, stride=2))
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.embed = nn.Linear(width * blocks * BASE_SIZE * BASE_SIZE, hidden_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.embed(self.body(x))


class BEGANDiscriminator(nn.Module):
    """The autoencoder D of BEGAN. Its score is the paper's energy L(v) = |v - D(v)| (mean absolute reconstruction
    error per sample, eta = 1), so it fits the one-score-per-sample discriminator contract: low on what it
    reconstructs well (real data, once trained), high elsewhere. ``features`` is the embedding h,
    ``reconstruct`` the autoencoder's output D(v)."""

    def __init__(self, channels: int, image_size: int, width: int = 64, hidden_dim: int = 64):
        super().__init__()
        self.encoder = BEGANEncoder(channels, image_size, width, hidden_dim)
        self.decoder = BEGANDecoder(hidden_dim, channels, image_size, width)

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.encoder(x)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """(N,) L(x) = mean |x - D(x)| over channels and pixels; ``labels`` ignored (unconditional)."""
        return (x - self.reconstruct(x)).abs().flatten(1).mean(1)

