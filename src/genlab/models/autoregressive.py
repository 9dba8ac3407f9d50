"""``AutoregressiveModule``: the exact-likelihood scheme shared by PixelCNN, Gated PixelCNN, Row LSTM and the
seed's raster-scan LSTM.

p(x) = prod over pixels in raster order (and channels R, G, B inside a pixel) of p(x_t | x_<t [, y]), each factor a
softmax over the coding's levels. Training minimises the exact negative log-likelihood; ``bits/dim`` is
nats / (dims * ln 2) with dims = channels x H x W of the *coded* image (1 index per pixel for palette data).

The net is passed as a partial (Hydra ``_partial_: true``) and built here because its input width and output
levels come from the pixel coding (1-of-K palette, 2 or 256 uniform levels), which depends on the data.
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data.batch import Batch
from genlab.models.base import GenerativeModule, LabelConditioning, evaluating

OptimizerFactory = Callable[..., torch.optim.Optimizer]


def draw_categorical(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One draw per row of (N, levels) logits by inverting the CDF with uniforms drawn on the CPU, so a seeded
    generator gives the same samples on any device."""
    probs = torch.softmax(logits.float(), dim=1)
    u = torch.rand(logits.shape[0], 1, generator=generator).to(logits.device)
    return (probs.cumsum(1) < u).sum(1).clamp(max=logits.shape[1] - 1)


class AutoregressiveModule(LabelConditioning, GenerativeModule):
    """Args:
        net: partial net constructor missing ``in_channels``, ``channels``, ``levels``, ``num_classes``; the built
            net maps embedded images (N, in_channels, H, W) to logits (N, levels, channels, H, W).
        coding: a pixel coding from ``genlab.coding`` (uniform levels or a palette).
        optimizer: ``torch.optim`` constructor missing only the parameters.
        image_size: side of the (square) images, for sampling.
        num_classes, conditional: ``conditional=True`` conditions every layer on the label (``num_classes``
            classes); ``sample(n, condition=labels)``.
    """

    def __init__(
        self,
        net: Callable[..., nn.Module],
        coding: nn.Module,
        optimizer: OptimizerFactory,
        image_size: int,
        num_classes: int = 0,
        conditional: bool = False,
    ):
        super().__init__()
        self.init_conditioning(conditional, num_classes)
        self.coding = coding
        self.image_size = image_size
        self.net = net(
            in_channels=coding.input_channels, channels=coding.channels, levels=coding.levels, num_classes=self.num_classes
        )
        self.optimizer = optimizer
        self.dims = coding.channels * image_size * image_size

    def configure_optimizers(self):
        return self.optimizer(self.parameters())

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            self.coding.adapt(datamodule)

    # -- likelihood -----------------------------------------------------------------------------------------------
    def log_prob_indices(self, indices: Tensor, labels: Tensor | None = None) -> Tensor:
        """log p(indices) in nats, one value per image: the sum of the per-variable log-softmax terms."""
        logits = self.net(self.coding.embed(indices), self.check_labels(labels))
        return -F.cross_entropy(logits, indices, reduction="none").flatten(1).sum(1)

    def log_likelihood(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        """Exact log p(x) in nats per image of the coded images (what a held-out NLL reports)."""
        return self.log_prob_indices(self.coding.encode(images), labels)

    def bits_per_dim(self, nll_nats: Tensor, images: Tensor | None = None) -> Tensor:
        """nats -> bits per coded dimension (channels x H x W of the indices; one per pixel for a palette)."""
        return nll_nats / (self.dims * math.log(2))

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        nll = -self.log_likelihood(batch.images, batch.labels)
        loss = nll.mean() / self.dims  # nats per dim: a learning rate that does not depend on the image size
        self.log_dict({"train/nll_nats": nll.mean().detach(), "train/bits_per_dim": self.bits_per_dim(nll.mean()).detach()}, prog_bar=True, batch_size=len(batch))
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Exact held-out NLL per epoch (``val/nll_nats``: what early stopping and the best checkpoint monitor,
        ``callbacks=early_stopping``); averaged over images and, under DDP, over processes."""
        nll = -self.log_likelihood(batch.images, batch.labels)
        self.log_dict(
            {"val/nll_nats": nll.mean(), "val/bits_per_dim": self.bits_per_dim(nll.mean())},
            batch_size=len(batch), sync_dist=True,
        )

    # -- sampling ---------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def fill(
        self, indices: Tensor, start: int, labels: Tensor | None, generator: torch.Generator | None, *, cached: bool = True
    ) -> Tensor:
        """Ancestral sampling of every variable at raster pixel index >= ``start`` of ``indices`` (in place).

        ``cached=True`` uses the net's own incremental sampler (``net.fill``: per-layer caches for PixelCNNs, the
        carried state for the LSTMs). ``cached=False`` is the reference it must agree with: the whole net once per
        variable. Both draw the same uniforms in the same order, so a seed gives the same samples either way."""
        labels = self.check_labels(labels)
        draw = lambda logits: draw_categorical(logits, generator)  # noqa: E731
        if cached and hasattr(self.net, "fill"):
            return self.net.fill(indices, start, self.coding.embed, draw, labels)
        width = indices.shape[-1]
        for t in range(start, indices.shape[-2] * width):
            i, j = divmod(t, width)
            for c in range(self.coding.channels):
                # logits at row i depend on rows <= i only: skip the rows below
                logits = self.net(self.coding.embed(indices[:, :, : i + 1]), labels)
                indices[:, c, i, j] = draw(logits[:, :, c, i, j])
        return indices

    def sample(self, n: int, *, condition: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        condition = self.sampling_labels(n, condition)
        shape = (n, self.coding.channels, self.image_size, self.image_size)
        with evaluating(self):
            indices = self.fill(torch.zeros(shape, dtype=torch.long, device=self.device), 0, condition, generator)
            return self.coding.decode(indices)

    def complete(
        self, images: Tensor, given_pixels: int, *, condition: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Keep the first ``given_pixels`` pixels (raster order) of ``images`` and sample the rest."""
        condition = self.sampling_labels(len(images), condition)
        with evaluating(self):
            indices = self.coding.encode(images.to(self.device))
            indices = self.fill(indices, given_pixels, condition, generator)
            return self.coding.decode(indices)
