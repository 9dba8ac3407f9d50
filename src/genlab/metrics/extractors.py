"""Feature extractors shared by the sample-quality metrics.

A :class:`FeatureExtractor` maps generated or real images in [-1, 1] (the sampling contract's range, any channel
count and size it supports) to a dict of named feature tensors. Metrics never convert images themselves: each one
holds a :meth:`FeatureExtractor.view` of a shared extractor, so

* FID, KID, IS and precision/recall configured as separate entries use **one** network in memory (the factories
  :func:`inception_v3` here and :func:`genlab.metrics.classifier.mnist_classifier` return the same instance for
  the same weights, through :func:`shared_extractor`), and
* one forward pass per batch: the extractor remembers its last input tensor, so the second metric fed the same
  batch gets the cached features instead of another InceptionV3 pass (about 0.2 s per image on our CPUs).
"""

import hashlib
import pickle
import weakref
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

# torch-fidelity's InceptionV3 weights (the TF FID graph converted to PyTorch), which torchmetrics loads too.
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_WEIGHTS_FILE}"
INCEPTION_FEATURE_DIMS = {"64": 64, "192": 192, "768": 768, "2048": 2048, "logits_unbiased": 1008, "logits": 1008}


class FeatureExtractor(nn.Module):
    """Base class: ``forward(images) -> {feature name: Tensor[N, d]}``, memoised on the last input tensor.

    Subclasses implement :meth:`compute_features` and may refuse reference data they cannot describe in
    :meth:`check_reference`. Always in eval mode: features must not depend on batch composition.
    """

    def __init__(self, name: str, feature_dims: dict[str, int]):
        super().__init__()
        self.name = name
        self.feature_dims = dict(feature_dims)
        self._last_input: weakref.ref | None = None
        self._last_version = -1
        self._last_output: dict[str, Tensor] | None = None
        self._fingerprint: str | None = None
        self.reference_memo: dict[str, object] = {}  # cache key -> ReferenceFeatures, see genlab.metrics.reference

    def compute_features(self, images: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    def check_reference(self, images: Tensor, labels: Tensor, outputs: dict[str, Tensor], dataset: str) -> dict[str, float]:
        """Called on reference (real) images before their features are cached; raise if this extractor cannot
        describe them. Returns extra facts to record with the cache (e.g. the classifier's accuracy on them)."""
        return {}

    def train(self, mode: bool = True) -> "FeatureExtractor":
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> dict[str, Tensor]:
        if self._last_input is not None and self._last_input() is images and images._version == self._last_version:
            return self._last_output
        output = self.compute_features(images)
        self._last_input, self._last_version, self._last_output = weakref.ref(images), images._version, output
        return output

    def view(self, feature: str) -> "FeatureView":
        if feature not in self.feature_dims:
            raise ValueError(f"{self.name} has no feature {feature!r}; choose one of {sorted(self.feature_dims)}.")
        return FeatureView(self, feature)

    def fingerprint(self) -> str:
        """Hash of the name and every weight: reference-feature caches of different weights never mix."""
        if self._fingerprint is None:
            digest = hashlib.sha256(self.name.encode())
            for key, tensor in sorted(self.state_dict().items()):
                digest.update(key.encode())
                digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint


class UnsupportedDataError(ValueError):
    """Raised by :meth:`FeatureExtractor.check_reference` for data the extractor cannot describe."""


class FeatureView(nn.Module):
    """One named feature of a shared extractor, shaped the way torchmetrics wants a custom ``feature`` module:
    ``forward(images) -> Tensor[N, num_features]`` with an integer ``num_features``."""

    def __init__(self, extractor: FeatureExtractor, feature: str):
        super().__init__()
        self.extractor = extractor
        self.feature = feature
        self.num_features = extractor.feature_dims[feature]

    def forward(self, images: Tensor) -> Tensor:
        return self.extractor(images)[self.feature]

    def train(self, mode: bool = True) -> "FeatureView":
        return super().train(False)


class RawFeatures(FeatureExtractor):
    """The samples themselves, flattened, as feature ``"raw"``: FID/KID/precision-recall directly on low-dimensional
    data such as the 2-D toy distributions, or on known Gaussians in tests."""

    def __init__(self, num_features: int):
        super().__init__(name=f"raw{num_features}", feature_dims={"raw": num_features})

    def compute_features(self, images: Tensor) -> dict[str, Tensor]:
        flat = images.reshape(images.shape[0], -1).float()
        if flat.shape[1] != self.feature_dims["raw"]:
            raise ValueError(f"RawFeatures(num_features={self.feature_dims['raw']}) got samples of shape {tuple(images.shape)}.")
        return {"raw": flat}


class InceptionWeightsUnavailable(RuntimeError):
    pass


def inception_hub_path() -> Path:
    """Where torch-fidelity (through ``torch.hub``) caches the downloaded weights and looks for them first."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE


def _how_to_get_weights() -> str:
    return (
        f"Download {INCEPTION_WEIGHTS_FILE} (about 91 MB) from\n  {INCEPTION_WEIGHTS_URL}\n"
        f"on a machine with internet, copy it over and pass metrics.inception_weights=/path/to/{INCEPTION_WEIGHTS_FILE} "
        f"(or put it at {inception_hub_path()}, the torch.hub cache that is used automatically). "
        f"Note: pt_inception-2015-12-05-6726825d.pth is pytorch-fid's file, a different one. "
        f"On a CPU without those weights, metrics=mnist (digits) or metrics=none."
    )


class InceptionV3Features(FeatureExtractor):
    """torchmetrics' ``NoTrainInceptionV3`` (torch-fidelity's ``FeatureExtractorInceptionV3``: the TF FID graph,
    resized with the TF1-compatible bilinear resize, i.e. ``antialias=False``) with all requested layers from one pass.

    Input: images in [-1, 1], 1 or 3 channels, any size. They are quantised to uint8 exactly like the PNGs written
    by ``eval.py mode=sample`` (``round((x + 1) * 127.5)``) and grayscale is repeated to RGB, so in-process FID and
    FID from other tools on those PNGs see the same pixels.
    """

    def __init__(self, weights: str | Path | None = None, features: tuple[str, ...] = ("2048", "logits_unbiased")):
        unknown = set(features) - set(INCEPTION_FEATURE_DIMS)
        if unknown:
            raise ValueError(f"InceptionV3 features {sorted(unknown)} do not exist; choose from {sorted(INCEPTION_FEATURE_DIMS)}.")
        super().__init__(name="inception-v3-compat", feature_dims={f: INCEPTION_FEATURE_DIMS[f] for f in features})
        self.features_list = list(features)
        self.net = load_inception(weights, self.features_list)

    def compute_features(self, images: Tensor) -> dict[str, Tensor]:
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise UnsupportedDataError(f"metrics=inception scores images of shape (N, 1 or 3, H, W); got {tuple(images.shape)}.")
        uint8 = to_uint8(images)
        if uint8.shape[1] == 1:
            uint8 = uint8.repeat(1, 3, 1, 1)
        outputs = self.net._torch_fidelity_forward(uint8)
        return {name: out.reshape(images.shape[0], -1) for name, out in zip(self.features_list, outputs)}


def load_inception(weights: str | Path | None, features: list[str]) -> nn.Module:
    """Build the InceptionV3 through torchmetrics/torch-fidelity: from ``weights`` when given, else from the torch.hub
    cache or by download. Every way this fails offline ends in one message naming the file, the URL and the key."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"metrics.inception_weights={path}: no such file.\n{_how_to_get_weights()}")
    else:
        path = inception_hub_path()
    try:
        return NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=features,
            feature_extractor_weights_path=str(path) if weights is not None else None,
            antialias=False,
        )
    except (EOFError, pickle.UnpicklingError) as err:
        raise InceptionWeightsUnavailable(
            f"The InceptionV3 weights file {path} is truncated or corrupt ({type(err).__name__}: {err}); "
            f"delete it and fetch it again.\n{_how_to_get_weights()}"
        ) from err
    except RuntimeError as err:
        if "state_dict" not in str(err):
            raise
        raise InceptionWeightsUnavailable(
            f"{path} is not torch-fidelity's InceptionV3 weights file ({str(err).splitlines()[0]}).\n{_how_to_get_weights()}"
        ) from err
    except OSError as err:  # urllib.error.URLError, socket errors, DNS failures: no internet
        raise InceptionWeightsUnavailable(
            f"InceptionV3 weights are not available: no file at {path} and downloading them failed "
            f"({type(err).__name__}: {err}).\n{_how_to_get_weights()}"
        ) from err


# One instance per (kind, weights file, options), alive as long as some metric holds it.
_SHARED: "weakref.WeakValueDictionary[tuple, FeatureExtractor]" = weakref.WeakValueDictionary()


def shared_extractor(kind: str, weights: str | Path | None, build: Callable[[], FeatureExtractor], *options) -> FeatureExtractor:
    """The extractor of ``kind`` for ``weights`` that some metric already holds, else a new one from ``build()``.

    Hydra instantiates every metric node's ``extractor`` separately; sharing here is what makes FID, KID, IS and
    precision/recall of one config use one network and one forward pass per batch. The registry holds weak
    references, so an extractor lives exactly as long as a metric uses it. ``weights`` is resolved to an absolute
    path, so ``./w.pt`` and ``/abs/w.pt`` share; None means the extractor's default weights.
    """
    key = (kind, str(Path(weights).expanduser().resolve()) if weights else None, *options)
    extractor = _SHARED.get(key)
    if extractor is None:
        extractor = build()
        _SHARED[key] = extractor
    return extractor


def inception_v3(weights: str | Path | None = None) -> InceptionV3Features:
    """The shared InceptionV3 extractor (pool3 ``"2048"`` and ``"logits_unbiased"``) for ``weights`` (None: the
    torch.hub cache, downloading when online)."""
    return shared_extractor("inception", weights, lambda: InceptionV3Features(weights))


def to_uint8(images: Tensor) -> Tensor:
    """[-1, 1] -> uint8 [0, 255] by rounding: the pixels of the PNGs genlab writes, and what InceptionV3 sees."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
