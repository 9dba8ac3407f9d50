"""The contracts nets are built to, as ``typing.Protocol``s: a scheme checks its nets against them when it is
built, so a wrong ``_target_`` fails with the key to fix instead of a shape error deep inside a training step."""

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Generator(Protocol):
    """Noise (N, latent_dim) -> samples (N, C, H, W) in [-1, 1], or points (N, dim)."""

    latent_dim: int

    def forward(self, z: Tensor) -> Tensor: ...


@runtime_checkable
class Discriminator(Protocol):
    """Samples -> one score per sample; ``features`` is its last hidden layer (N, F), which feature matching and
    minibatch discrimination read."""

    def forward(self, x: Tensor) -> Tensor: ...

    def features(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class Translator(Protocol):
    """Source images (N, in_channels, H, W) -> target images (N, out_channels, H, W) in [-1, 1]."""

    in_channels: int
    out_channels: int

    def forward(self, source: Tensor) -> Tensor: ...
