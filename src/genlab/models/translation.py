"""What the image-to-image schemes (pix2pix, CycleGAN, StarGAN) share: the sampling contract for translators.

A translator's condition is its *source*: ``sample(n, condition=source)`` translates ``n`` source images
(``conditioning = "source"``), so sample grids, metrics and ``eval.py`` picture and score translators with the
callbacks every model uses: the datamodule hands out a fixed, seeded batch of held-out sources
(:meth:`genlab.data.batch.ConditionSource.conditions`). Each scheme implements :meth:`TranslationModule.translate`
(the trained mapping, source -> target, in [-1, 1]) and may add rows to its grid with
:meth:`TranslationModule.translation_rows` (CycleGAN's reconstructions).
"""

from torch import Tensor

from genlab.data.batch import Batch
from genlab.models.base import GenerativeModule, evaluating


class TranslationModule(GenerativeModule):
    """Base of the translation schemes: ``sample(n, condition=source)`` = ``translate(source)`` in eval mode.

    ``source_channels`` is the number of channels a source image has (``data.source_channels``); sources with
    another shape are refused with what they were, before any net sees them.
    """

    conditioning = "source"

    def __init__(self, source_channels: int) -> None:
        super().__init__()
        self.source_channels = source_channels

    #: what a batch of the wrong data gets told to use instead (each scheme names the data it learns from)
    data_hint = "translation data with source images (data=mnist_thin2thick, data=unpaired or data=paired data.root=DIR)"

    def source_and_target(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """A training batch's (source, images), or one clear error for data without sources or of other channels
        than the nets were built for (``data.source_channels``, ``data.channels``)."""
        name = type(self).__name__
        if batch.source is None:
            raise ValueError(
                f"{name} translates source images: its batches need a source beside images, and this data has none. "
                f"Use {self.data_hint}."
            )
        if batch.source.shape[1] != self.source_channels or batch.images.shape[1] != self.channels:
            raise ValueError(
                f"{name} was built for {self.source_channels}-channel sources and {self.channels}-channel targets "
                f"(data.source_channels, data.channels) but got a batch of {tuple(batch.source.shape)} sources and "
                f"{tuple(batch.images.shape)} images."
            )
        return batch.source, batch.images

    def translate(self, source: Tensor) -> Tensor:
        """Source images (N, source_channels, H, W) -> translated images (N, C, H, W) in [-1, 1] (with grad)."""
        raise NotImplementedError

    def translation_rows(self, condition) -> dict[str, Tensor]:
        """Named rows of a translation grid, in order, each (N, C, H, W) in [-1, 1], from the ``condition`` that
        :meth:`sample` takes: the sources, then their translations. Schemes add rows (CycleGAN: reconstructions;
        StarGAN: one row per target domain). Called without grad, in eval mode, by the grid callback."""
        source = self.check_source(len(condition), condition)
        return {"source": source, "translated": self.translate(source).clamp(-1, 1)}

    def sample(self, n: int, *, condition: Tensor | None = None, generator=None) -> Tensor:
        """Translate ``n`` source images (``condition``). Translation is deterministic: ``generator`` is accepted for
        the one contract and unused (dropout in pix2pix's generator is off in eval mode)."""
        source = self.check_source(n, condition)
        with evaluating(self):
            return self.translate(source).clamp(-1, 1)

    def check_source(self, n: int, source: Tensor | None) -> Tensor:
        """``source`` on the module's device, or a clear error naming what was passed instead."""
        if source is None:
            raise ValueError(
                f"{type(self).__name__} translates images: call sample(n, condition=source) with n={n} source images "
                f"(shape ({n}, {self.source_channels}, H, W), values in [-1, 1]); grids and metrics get them from the "
                "datamodule's held-out split (datamodule.conditions(n, 'source', seed))."
            )
        shape = tuple(source.shape) if isinstance(source, Tensor) else type(source).__name__
        if not isinstance(source, Tensor) or source.dim() != 4 or len(source) != n or source.shape[1] != self.source_channels:
            raise ValueError(
                f"{type(self).__name__}.sample(n={n}, condition=...) needs {n} source images of shape "
                f"({n}, {self.source_channels}, H, W), got {shape}."
            )
        return source.to(self.device, dtype=self.dtype if self.dtype.is_floating_point else None)
