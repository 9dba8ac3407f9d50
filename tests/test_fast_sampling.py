"""The cached PixelCNN sampler (genlab.nets.incremental) against the naive one (the whole net once per variable):
the same logits at every step, the same samples bit for bit under a seed, for sampling and for completion."""

import functools

import pytest
import torch

from genlab.coding import PaletteCoding, UniformCoding
from genlab.models import AutoregressiveModule
from genlab.models.base import evaluating
from genlab.nets import PixelCNN

NETS = {"pixelcnn": False, "gated_pixelcnn": True}
CODINGS = {
    "binary": lambda: UniformCoding(1, 2),
    "rgb4": lambda: UniformCoding(3, 4),  # channels R -> G -> B inside a pixel
    "palette": lambda: palette_coding(5),
}


def palette_coding(colors: int) -> PaletteCoding:
    coding = PaletteCoding(colors)
    coding.set_palette(torch.randint(0, 256, (colors, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)))
    return coding


def tiny_model(name: str, coding, num_classes: int = 0, sharpness: float = 6.0) -> AutoregressiveModule:
    """A small random net whose logits are scaled up (``sharpness``), so every draw depends on its context and a
    sampler that read a wrong pixel would draw differently."""
    torch.manual_seed(0)
    net = functools.partial(PixelCNN, hidden=12, blocks=2, gated=NETS[name], kernel_size=5)
    model = AutoregressiveModule(net, coding, functools.partial(torch.optim.Adam), 6, num_classes, conditional=num_classes > 0)
    with torch.no_grad():
        model.net.head[-1].weight.mul_(sharpness)
    return model


def labels_for(num_classes: int, n: int) -> torch.Tensor | None:
    return torch.arange(n) % num_classes if num_classes else None


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("num_classes", [0, 3])
@pytest.mark.parametrize("start", [0, 17])
def test_cached_sampler_sees_the_logits_of_the_training_forward_pass(name: str, coding: str, num_classes: int, start: int):
    """Fed the true pixels (teacher forcing), the logits the cached sampler draws from at each pixel and channel, in
    raster order, are those the full forward pass computes; the pixels before ``start`` are only read."""
    model = tiny_model(name, CODINGS[coding](), num_classes)
    n, channels, height, width = 3, model.coding.channels, 5, 7  # not square: rows and columns cannot be swapped
    indices = torch.randint(model.coding.levels, (n, channels, height, width), generator=torch.Generator().manual_seed(1))
    labels = labels_for(num_classes, n)
    order = iter([(t // width, t % width, c) for t in range(start, height * width) for c in range(channels)])
    gaps = []

    def teacher(logits: torch.Tensor) -> torch.Tensor:
        i, j, c = next(order)
        gaps.append((logits - full[:, :, c, i, j]).abs().max())
        return indices[:, c, i, j]

    with evaluating(model):
        full = model.net(model.coding.embed(indices), labels)
        filled = model.net.fill(indices.clone(), start, model.coding.embed, teacher, labels)
    assert len(gaps) == (height * width - start) * channels and next(order, None) is None
    assert torch.equal(filled, indices)
    # the same arithmetic in another order (a matrix product per pixel, a convolution over the image): last bits only
    assert max(gaps) < 1e-5, max(gaps)


@pytest.mark.parametrize("name,num_classes", [("pixelcnn", 0), ("gated_pixelcnn", 0), ("gated_pixelcnn", 10)])
@pytest.mark.parametrize("coding", ["binary", "rgb4"])
def test_cached_samples_equal_naive_samples_bit_for_bit(name: str, num_classes: int, coding: str):
    """``sample()`` and ``complete()`` use the cached sampler; under one seed they return exactly what the naive
    sampler returns (the same uniforms in the same order, drawn from the same distributions)."""
    model = tiny_model(name, CODINGS[coding](), num_classes)
    n, shape = 8, (8, model.coding.channels, 6, 6)
    labels = labels_for(num_classes, n)
    seed = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    with evaluating(model):
        naive = model.fill(torch.zeros(shape, dtype=torch.long), 0, labels, seed(), cached=False)
    cached = model.sample(n, condition=labels, generator=seed())
    assert torch.equal(cached, model.coding.decode(naive))
    assert naive.float().std() > 0 and len(naive.flatten(1).unique(dim=0)) == n, "degenerate samples prove nothing"

    originals = model.coding.decode(torch.randint(model.coding.levels, shape, generator=torch.Generator().manual_seed(2)))
    with evaluating(model):
        naive = model.fill(model.coding.encode(originals), 15, labels, seed(), cached=False)
    assert torch.equal(model.complete(originals, 15, condition=labels, generator=seed()), model.coding.decode(naive))
