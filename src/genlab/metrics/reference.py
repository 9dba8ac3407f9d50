"""Reference (real-data) features: computed once per (dataset, extractor), cached on disk, shared in memory.

FID against a training set needs that set's features. Recomputing them on every run costs ~2 min per 10k images
for InceptionV3 on a GPU (and hours on a CPU), so they are cached under ``cache_dir`` (default
``$GENLAB_CACHE_DIR``, else ``${XDG_CACHE_HOME:-~/.cache}/genlab``) in a file whose name is readable and whose key
hashes everything that changes the features:

* the extractor's name and a hash of all its weights (another classifier or Inception file -> another cache);
* the datamodule class, dataset length, number of reference images;
* the shape of the images (``data.image_size``, ``data.channels``) and the exact pixels and labels of 16 of them
  (another ``data.root``, another resize or another split -> another cache).

A cache is only written after the extractor accepted the data (:meth:`FeatureExtractor.check_reference`), so a
cached file never hides an error.

One pass, one file per (dataset, extractor, count): the cache holds **every** feature the extractor computes
(``"2048"`` and ``"logits_unbiased"`` for InceptionV3, ``"features"`` and ``"logits"`` for the MNIST classifier),
not only the one the calling metric asked for. The network computes all of them in the same forward pass anyway,
so FID/KID/precision-recall and the real-data Inception Score share one pass over the reference images (about 2
GPU-minutes per 10k images with InceptionV3) and one file, whichever metric prepares first.
"""

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from genlab.data.batch import Batch
from genlab.metrics.extractors import FeatureExtractor

CACHE_VERSION = 2  # 2: one file holds all of the extractor's features
SUBSET_SEED = 0


@dataclass
class ReferenceFeatures:
    features: dict[str, Tensor]  # name -> (N, d) float32 on the CPU
    labels: Tensor  # (N,) int64, -1 where the dataset has no labels
    info: dict[str, Any] = field(default_factory=dict)


def default_cache_dir() -> Path:
    if os.environ.get("GENLAB_CACHE_DIR"):
        return Path(os.environ["GENLAB_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "genlab"


def dataset_name(datamodule) -> str:
    """``data=cifar10`` style names for error messages where the datamodule knows its config choice."""
    name = getattr(datamodule, "config_name", "")
    return f"data={name}" if name else type(datamodule).__name__


def training_set(datamodule) -> Dataset:
    """The reference images: the datamodule's training split (FID against the training set is the convention of
    the published tables; state it when comparing)."""
    if datamodule is None:
        raise ValueError(
            "Metrics that compare with real images need the datamodule: pass one to prepare(datamodule) "
            "(trainer.fit(model, datamodule=...) does this for the SampleMetrics callback)."
        )
    if getattr(datamodule, "train_set", None) is None:  # eval.py; under trainer.fit Lightning did this already
        datamodule.prepare_data()  # downloads where data.download=true
        datamodule.setup("fit")
    dataset = getattr(datamodule, "train_set", None)
    if dataset is None:
        raise TypeError(
            f"{type(datamodule).__name__} has no train_set after setup('fit'); reference statistics need an image "
            "datamodule built on genlab.data.ImageDataModule."
        )
    return dataset


def reference_features(
    extractor: FeatureExtractor,
    datamodule,
    features: Sequence[str],
    num_samples: int | None = 10000,
    batch_size: int = 250,
    cache_dir: str | Path | None = None,
    device: torch.device | str | None = None,
) -> ReferenceFeatures:
    """Features of (a seeded subset of ``num_samples``, or all of) the datamodule's training images: all of the
    extractor's features (see the module docstring why), of which the caller needs at least ``features``."""
    unknown = sorted(set(features) - set(extractor.feature_dims))
    if unknown:
        raise ValueError(f"{extractor.name} has no feature {unknown}; choose from {sorted(extractor.feature_dims)}.")
    features = sorted(extractor.feature_dims)
    dataset = training_set(datamodule)
    indices = subset_indices(len(dataset), num_samples)
    probe_images, probe_labels = probe(datamodule, dataset, indices)
    description = {
        "version": CACHE_VERSION,
        "extractor": extractor.name,
        "extractor_weights": extractor.fingerprint(),
        "features": features,
        "datamodule": f"{type(datamodule).__module__}.{type(datamodule).__qualname__}",
        "dataset_size": len(dataset),
        "num_samples": len(indices),
        "subset_seed": SUBSET_SEED,
        "image_shape": list(probe_images.shape[1:]),
        "probe": hashlib.sha256(probe_images.float().numpy().tobytes() + probe_labels.numpy().tobytes()).hexdigest(),
    }
    key = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]
    if key in extractor.reference_memo:
        return extractor.reference_memo[key]

    c, h, w = description["image_shape"] if len(description["image_shape"]) == 3 else (0, 0, 0)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", dataset_name(datamodule)).strip("-").lower()
    path = Path(cache_dir or default_cache_dir()).expanduser() / "reference_features" / (
        f"{slug}_{c}x{h}x{w}_n{len(indices)}_{extractor.name}_{key}.pt"
    )
    if path.is_file():
        stored = torch.load(path, map_location="cpu", weights_only=True)
        result = ReferenceFeatures(stored["features"], stored["labels"], stored["info"] | {"cache": str(path), "cached": True})
    else:
        result = compute_reference(extractor, datamodule, dataset, indices, features, batch_size, device)
        result.info |= {"dataset": dataset_name(datamodule), **description}
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"features": result.features, "labels": result.labels, "info": result.info}, partial)
        os.replace(partial, path)  # atomic: parallel jobs of a sweep never read a half-written file
        result.info |= {"cache": str(path), "cached": False}
    extractor.reference_memo[key] = result
    return result


def subset_indices(size: int, num_samples: int | None) -> list[int]:
    if size == 0:
        raise ValueError("The training split is empty: no reference images to compare samples with.")
    if num_samples is None or num_samples >= size:
        return list(range(size))
    if num_samples < 2:
        raise ValueError(f"metrics.real_samples must be at least 2, got {num_samples}.")
    chosen = torch.randperm(size, generator=torch.Generator().manual_seed(SUBSET_SEED))[:num_samples]
    return sorted(chosen.tolist())


def labels_or_unlabelled(batch: Batch) -> Tensor:
    """The batch's class ids, or -1 per image where the data has none (how caches and extractors record it)."""
    if batch.labels is None:
        return torch.full((len(batch),), -1, dtype=torch.long)
    return batch.labels.long()


def probe(datamodule, dataset: Dataset, indices: list[int], count: int = 8) -> tuple[Tensor, Tensor]:
    if not callable(getattr(datamodule, "batch_of", None)):
        raise TypeError(
            f"Reference statistics read the data through the Batch contract; {type(datamodule).__name__} has no "
            "batch_of/collate. Build it on genlab.data.ImageDataModule."
        )
    batch = datamodule.batch_of(dataset, indices[:count] + indices[-count:])
    return batch.images, labels_or_unlabelled(batch)


@torch.no_grad()
def compute_reference(extractor, datamodule, dataset, indices, features, batch_size, device) -> ReferenceFeatures:
    loader = DataLoader(
        Subset(dataset, indices), batch_size=batch_size, shuffle=False, num_workers=getattr(datamodule, "num_workers", 0),
        collate_fn=datamodule.collate,
    )
    collected: dict[str, list[Tensor]] = {name: [] for name in features}
    labels: list[Tensor] = []
    info: dict[str, Any] = {}
    for i, batch in enumerate(loader):
        images, batch_labels = batch.images, labels_or_unlabelled(batch)
        outputs = extractor(images.to(device) if device is not None else images)
        if i == 0:  # fail fast, before a long pass over data this extractor cannot describe
            info |= extractor.check_reference(images, batch_labels, outputs, dataset_name(datamodule))
        for name in features:
            collected[name].append(outputs[name].float().cpu())
        labels.append(batch_labels)
    return ReferenceFeatures({name: torch.cat(parts) for name, parts in collected.items()}, torch.cat(labels), info)
