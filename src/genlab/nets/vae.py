"""Convolutional VAE encoder and decoder (Kingma & Welling 2013), sized from ``image_size``.

The encoder halves the resolution with stride-2 convolutions while the size stays even and at least 8
(28 -> 14 -> 7, 32 -> 16 -> 8 -> 4, 20 -> 10 -> 5, 64 -> 32 -> 16 -> 8), so MNIST at its native 28 px and the
20 px Pokémon images work without resizing; the decoder mirrors it with transposed convolutions.

``num_classes > 0`` makes them conditional (Sohn et al. 2015, CVAE): the one-hot label is appended to the
encoder input as constant channels and to the decoder's latent code.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def downsamplings(image_size: int, max_downsamplings: int = 3) -> int:
    if image_size < 4:
        raise ValueError(f"VAE nets need data.image_size >= 4, got {image_size}.")
    n, size = 0, image_size
    while n < max_downsamplings and size % 2 == 0 and size >= 8:
        size //= 2
        n += 1
    return n


class ConvEncoder(nn.Module):
    """Image (and label) -> mean and log-variance of a diagonal Gaussian q(z | x[, y])."""

    def __init__(self, channels: int, image_size: int, latent_dim: int, width: int = 32, num_classes: int = 0):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        n = downsamplings(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels + num_classes, width, 3, 1, 1), nn.LeakyReLU(0.2)]
        maps = width
        for _ in range(n):
            layers += [nn.Conv2d(maps, maps * 2, 4, 2, 1), nn.LeakyReLU(0.2)]
            maps *= 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        size = image_size // 2**n
        self.to_stats = nn.Linear(maps * size * size, 2 * latent_dim)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.num_classes:
            if labels is None:
                raise ValueError("this encoder is class-conditional: pass labels.")
            onehot = F.one_hot(labels, self.num_classes).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, onehot.expand(-1, -1, *x.shape[2:])], dim=1)
        mean, log_var = self.to_stats(self.features(x)).chunk(2, dim=1)
        return mean, log_var


class ConvDecoder(nn.Module):
    """Latent code (and label) -> per-pixel distribution parameters (N, channels, H, W), unconstrained: Bernoulli
    logits or Gaussian means, as the training scheme reads them."""

    def __init__(self, channels: int, image_size: int, latent_dim: int, width: int = 32, num_classes: int = 0):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        n = downsamplings(image_size)
        self.base_size = image_size // 2**n
        self.base_maps = width * 2**n
        self.from_latent = nn.Linear(latent_dim + num_classes, self.base_maps * self.base_size**2)
        layers: list[nn.Module] = []
        maps = self.base_maps
        for _ in range(n):
            layers += [nn.LeakyReLU(0.2), nn.ConvTranspose2d(maps, maps // 2, 4, 2, 1)]
            maps //= 2
        layers += [nn.LeakyReLU(0.2), nn.Conv2d(maps, channels, 3, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes:
            if labels is None:
                raise ValueError("this decoder is class-conditional: pass labels.")
            z = torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)
        h = self.from_latent(z).view(z.shape[0], self.base_maps, self.base_size, self.base_size)
        return self.net(h)
