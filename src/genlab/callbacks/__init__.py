"""Callbacks. They talk to models only through the ``sample()`` contract and duck-typed capabilities
(``log_likelihood``, ``reconstruct``, ``decode``, ``complete``, class conditioning, ``sweep_code``, ``categorical_code``, ``classify``)."""

from genlab.callbacks.class_grid import ClassGrid
from genlab.callbacks.code_grid import CodeGrid
from genlab.callbacks.completion import CompletionGrid
from genlab.callbacks.held_out_classes import ClassifierError, CodeAccuracy
from genlab.callbacks.interpolation import InterpolationGrid
from genlab.callbacks.likelihood import HeldOutLikelihood
from genlab.callbacks.reconstructions import LatentTraversal, ReconstructionGrid
from genlab.callbacks.sample_metrics import SampleMetrics
from genlab.callbacks.samples import SampleGrid

__all__ = [
    "ClassGrid",
    "ClassifierError",
    "CodeAccuracy",
    "CodeGrid",
    "CompletionGrid",
    "HeldOutLikelihood",
    "InterpolationGrid",
    "LatentTraversal",
    "ReconstructionGrid",
    "SampleGrid",
    "SampleMetrics",
]
