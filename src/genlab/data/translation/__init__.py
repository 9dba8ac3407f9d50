"""Image-to-image translation data in the layouts users already have on disk, and embedded MNIST demos.

How each kind maps onto :class:`~genlab.data.batch.Batch` (``datamodule.pairing`` says which):

========== ====================================== =============================== =================================
pairing    ``images`` (what the model produces)   ``source`` (its input)          ``labels``
========== ====================================== =============================== =================================
paired     the target half of the AB file         the input half                  ``None``
unpaired   a B image, unrelated to the source     an A image                      ``None``
domains    the image                              ``None``                        domain index (N,) int64, or the
                                                                                  attribute vector (N, A) float 0/1
========== ====================================== =============================== =================================

Paired and unpaired items are ``(image, -1, source)`` triples with ``num_classes = 0``, so the loader's Batch has
``labels=None`` and ``conditions(n, "source", seed)`` returns held-out sources (A images). ``dataset[i]`` is the
deterministic test-time view; the training loader draws the random crop/flip and the random B (see
:mod:`genlab.data.translation.images`). docs/translation_data.md has the layouts and commands.
"""

from genlab.data.translation.domains import CelebADomainsDataModule, DomainFolderDataModule, DomainImages
from genlab.data.translation.images import MissingLayoutError, SharedTransform, TrainingView, TranslationDataModule, image_files
from genlab.data.translation.mnist import (
    MNISTColorizeDataModule,
    MNISTDomainsDataModule,
    MNISTEdges2DigitsDataModule,
    MNISTThin2ThickDataModule,
)
from genlab.data.translation.paired import PairedDataModule, PairedImages
from genlab.data.translation.unpaired import UnpairedDataModule, UnpairedImages

__all__ = [
    "CelebADomainsDataModule",
    "DomainFolderDataModule",
    "DomainImages",
    "MissingLayoutError",
    "MNISTColorizeDataModule",
    "MNISTDomainsDataModule",
    "MNISTEdges2DigitsDataModule",
    "MNISTThin2ThickDataModule",
    "PairedDataModule",
    "PairedImages",
    "SharedTransform",
    "TrainingView",
    "TranslationDataModule",
    "UnpairedDataModule",
    "UnpairedImages",
    "image_files",
]
