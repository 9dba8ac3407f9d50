"""Sample-quality metrics: torchmetrics ``Metric``s fed by the ``sample()`` contract, and the extractors they share.

The ``metrics`` config group is a mapping ``name: {_target_: ...}`` (see ``conf/metrics/``). Any torchmetrics
``Metric`` whose ``update`` takes a batch of samples plugs in (one with ``wants_condition = True`` gets
``update(samples, condition)``: the conditions they were drawn for); one that compares with real data also implements
``prepare(datamodule)``. Plain values in the mapping (``inception_weights``, ``real_samples``, ...) are settings the
metric nodes interpolate, not metrics: :func:`metric_entries` separates the two.
"""

from collections.abc import Mapping
from pathlib import Path

from torchmetrics import Metric

from genlab.metrics.classifier import mnist_classifier
from genlab.metrics.conditional import ConditionalAccuracy
from genlab.metrics.coverage import ClassCoverage
from genlab.metrics.divergences import kl_to_uniform
from genlab.metrics.extractors import (
    INCEPTION_WEIGHTS_FILE,
    INCEPTION_WEIGHTS_URL,
    FeatureExtractor,
    FeatureView,
    InceptionV3Features,
    InceptionWeightsUnavailable,
    RawFeatures,
    UnsupportedDataError,
    inception_v3,
    shared_extractor,
)
from genlab.metrics.feature_metrics import (
    FrechetDistance,
    InceptionScore,
    KernelDistance,
    PrecisionRecall,
    frechet_distance,
    inception_score,
)
from genlab.metrics.reference import ReferenceFeatures, default_cache_dir, reference_features

SETTING_TYPES = (str, int, float, bool, Path, type(None))


def metric_entries(mapping: Mapping | None) -> dict[str, Metric]:
    """The instantiated ``metrics`` mapping without its plain settings. Anything else is a config mistake."""
    metrics: dict[str, Metric] = {}
    for name, value in (mapping or {}).items():
        if isinstance(value, Metric):
            metrics[str(name)] = value
        elif not isinstance(value, SETTING_TYPES):
            raise TypeError(
                f"metrics.{name} is a {type(value).__name__}, neither a torchmetrics Metric (a node with _target_) nor a "
                "plain setting (string, number, bool, null). Every entry of the metrics group must be one of the two."
            )
    return metrics


__all__ = [
    "ClassCoverage",
    "ConditionalAccuracy",
    "FeatureExtractor",
    "FeatureView",
    "FrechetDistance",
    "INCEPTION_WEIGHTS_FILE",
    "INCEPTION_WEIGHTS_URL",
    "InceptionScore",
    "InceptionV3Features",
    "InceptionWeightsUnavailable",
    "KernelDistance",
    "PrecisionRecall",
    "RawFeatures",
    "ReferenceFeatures",
    "UnsupportedDataError",
    "default_cache_dir",
    "frechet_distance",
    "inception_score",
    "inception_v3",
    "kl_to_uniform",
    "metric_entries",
    "mnist_classifier",
    "reference_features",
    "shared_extractor",
]
