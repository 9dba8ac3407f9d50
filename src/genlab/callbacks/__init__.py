"""Callbacks. They talk to models only through the ``sample()`` contract."""

from genlab.callbacks.sample_metrics import SampleMetrics
from genlab.callbacks.samples import SampleGrid

__all__ = ["SampleGrid", "SampleMetrics"]
