"""Image completion (seed 000, "cover 50 % / 75 %"): keep the first fraction of pixels of real images in raster
order and let an autoregressive model sample the rest.

``complete(model, images, fraction)`` works with any model that has ``complete(images, given_pixels, *,
condition=None, generator=None)`` (``AutoregressiveModule``); ``completion_rows`` builds the original | covered |
completed grid that ``CompletionGrid`` logs and an eval mode can save.
"""

import torch
from torch import Tensor

#: value shown for covered pixels (mid-grey in [-1, 1])
COVER_VALUE = 0.0


def given_pixel_count(fraction: float, height: int, width: int) -> int:
    """Pixels kept when ``fraction`` of the image (in raster order) is given; 'cover 75 %' is ``fraction=0.25``."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"the given fraction of pixels must be in [0, 1], got {fraction}.")
    return round(fraction * height * width)


def cover(images: Tensor, given_pixels: int, value: float = COVER_VALUE) -> Tensor:
    """Copy of ``images`` with every pixel from raster index ``given_pixels`` on set to ``value``."""
    n, c, h, w = images.shape
    covered = images.clone().view(n, c, h * w)
    covered[:, :, given_pixels:] = value
    return covered.view(n, c, h, w)


@torch.no_grad()
def complete(
    model, images: Tensor, fraction: float, *, condition: Tensor | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """``images`` (N, C, H, W) in [-1, 1] with the first ``fraction`` of pixels kept and the rest sampled by ``model``.

    The kept pixels are returned exactly as the model codes them (identical to the input for binarised, 8-bit and
    palette images).
    """
    if not callable(getattr(model, "complete", None)):
        raise TypeError(
            f"{type(model).__name__} cannot complete images: completion needs an autoregressive model "
            "(model=pixelcnn, pixelrnn, rowlstm, ...)."
        )
    given = given_pixel_count(fraction, images.shape[-2], images.shape[-1])
    return model.complete(images, given, condition=condition, generator=generator).to(images.device)


@torch.no_grad()
def completion_rows(
    model, images: Tensor, fractions: tuple[float, ...] = (0.5, 0.25), *, condition: Tensor | None = None, seed: int = 0
) -> Tensor:
    """Rows for a grid with ``len(images)`` columns: originals, then for each fraction the covered images and the
    completions. Pass to ``genlab.images.image_grid(rows, nrow=len(images))``."""
    generator = torch.Generator().manual_seed(seed)
    rows = [images]
    for fraction in fractions:
        given = given_pixel_count(fraction, images.shape[-2], images.shape[-1])
        rows += [cover(images, given), complete(model, images, fraction, condition=condition, generator=generator)]
    return torch.cat([r.to(images.device) for r in rows])
