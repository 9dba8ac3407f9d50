"""Callbacks. They talk to models only through the ``sample()`` contract and duck-typed capabilities
(``log_likelihood``, ``reconstruct``, ``decode``, ``complete``)."""

from genlab.callbacks.completion import CompletionGrid
from genlab.callbacks.likelihood import HeldOutLikelihood
from genlab.callbacks.reconstructions import LatentTraversal, ReconstructionGrid
from genlab.callbacks.sample_metrics import SampleMetrics
from genlab.callbacks.samples import SampleGrid

__all__ = ["CompletionGrid", "HeldOutLikelihood", "LatentTraversal", "ReconstructionGrid", "SampleGrid", "SampleMetrics"]
