"""The small MNIST classifier that gives CPU-friendly "classifier FID" and class coverage on digit data.

InceptionV3 runs about 5 images/s on our CPUs and was trained on ImageNet photos, not digits. A domain classifier
(Fréchet LeNet Distance, dfaroughy/FID-MNIST) is the usual cheap alternative: its penultimate activations are the
features for FID/KID/precision-recall, its logits the predicted class for coverage. Values depend entirely on the
extractor, so they are comparable only with other numbers computed with these exact weights (the cache key and
``eval.json`` carry their fingerprint).

Weights: ``src/genlab/assets/mnist_classifier.pt``, trained by ``scripts/train_mnist_classifier.py``.
"""

from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.metrics.extractors import FeatureExtractor, UnsupportedDataError, shared_extractor

ASSET_NAME = "mnist_classifier.pt"
INPUT_SIZE = 32


class MNISTClassifierNet(nn.Module):
    """Three conv blocks (16-32-64 channels, 32 -> 4 px), global average pool, a 128-d hidden layer (the
    features), a 10-way linear head. About 33k parameters: cheap on a CPU, and the shipped file is ~70 kB."""

    def __init__(self, width: int = 16, feature_dim: int = 128, num_classes: int = 10, dropout: float = 0.3):
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2)
            )

        self.conv = nn.Sequential(block(1, width), block(width, 2 * width), block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(4 * width, feature_dim), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, num_classes)
        self.config = {"width": width, "feature_dim": feature_dim, "num_classes": num_classes, "dropout": dropout}

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations (N, feature_dim) of grayscale 32x32 images in [-1, 1]."""
        return self.hidden(self.conv(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.dropout(self.features(x)))


def default_weights_path() -> Path:
    return Path(str(resources.files("genlab") / "assets" / ASSET_NAME))


def load_classifier_net(weights: str | Path | None = None) -> tuple[MNISTClassifierNet, dict]:
    """The trained net in eval mode, and the metadata saved with it (held-out accuracy, training data, date)."""
    path = Path(weights).expanduser() if weights else default_weights_path()
    if not path.is_file():
        hint = (
            "Pass metrics.classifier_weights=PATH to a file written by scripts/train_mnist_classifier.py"
            if weights
            else "The shipped weights are missing from the installed package; reinstall genlab (pip install -e .) or "
            "retrain them with python scripts/train_mnist_classifier.py"
        )
        raise FileNotFoundError(f"MNIST classifier weights not found at {path}. {hint}.")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    net = MNISTClassifierNet(**checkpoint["config"])
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in checkpoint["state_dict"].items()})
    net.requires_grad_(False).eval()
    return net, dict(checkpoint.get("meta", {}))


class MNISTClassifierFeatures(FeatureExtractor):
    """Features ``"features"`` (N, 128) and ``"logits"`` (N, 10) of the shipped MNIST classifier.

    Input: any images in [-1, 1]. Three channels are averaged to gray and other sizes are resized to 32x32 (bilinear,
    antialiased), so ``data=mnist data.image_size=64 data.channels=3`` works. Whether a dataset is digit-like at
    all is checked on the real images (:meth:`check_reference`), where the labels are known.
    """

    def __init__(self, weights: str | Path | None = None, min_reference_accuracy: float = 0.9):
        net, meta = load_classifier_net(weights)
        super().__init__(name="mnist-classifier", feature_dims={"features": net.config["feature_dim"], "logits": net.config["num_classes"]})
        self.net = net
        self.meta = meta
        self.weights = str(weights) if weights else None
        self.min_reference_accuracy = min_reference_accuracy

    def train(self, mode: bool = True) -> "MNISTClassifierFeatures":
        return super().train(False)  # BatchNorm and dropout stay in eval mode: fixed features

    def preprocess(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise UnsupportedDataError(
                f"metrics=mnist scores images of shape (N, 1 or 3, H, W); got samples of shape {tuple(images.shape)}. "
                "Use a metric for this kind of data (e.g. metrics=modes for 2-D toy data)."
            )
        x = images.float()
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
        return x.clamp(-1, 1)

    def compute_features(self, images: Tensor) -> dict[str, Tensor]:
        x = self.preprocess(images)
        features = self.net.features(x)
        return {"features": features, "logits": self.net.head(features)}

    def check_reference(self, images: Tensor, labels: Tensor, outputs: dict[str, Tensor], dataset: str) -> dict[str, float]:
        """Refuse reference data the classifier cannot read: colour images, or labelled data it mostly misclassifies
        (Fashion-MNIST, grayscale CIFAR-10). Classifier FID on such data would be a number that measures nothing."""
        if images.shape[1] == 3 and (images - images.mean(dim=1, keepdim=True)).abs().amax() > 1e-3:
            raise UnsupportedDataError(
                f"metrics=mnist needs MNIST-like grayscale digits, but the images of {dataset} are in colour. "
                "Use metrics=inception (FID/IS/KID with InceptionV3; a GPU is recommended) or metrics=none."
            )
        info: dict[str, float] = {}
        labels = labels.to(outputs["logits"].device)
        labelled = labels >= 0
        if labelled.any():  # measured on the first batch of reference images: enough to tell digits from non-digits
            accuracy = (outputs["logits"][labelled].argmax(1) == labels[labelled]).float().mean().item()
            info["reference_accuracy"] = accuracy
            if accuracy < self.min_reference_accuracy:
                raise UnsupportedDataError(
                    f"metrics=mnist needs MNIST-like digits, but the shipped MNIST classifier labels only "
                    f"{accuracy:.1%} of the reference images of {dataset} correctly (at least "
                    f"{self.min_reference_accuracy:.0%} expected), so classifier FID and class coverage would measure "
                    "nothing. Use metrics=inception (a GPU is recommended) or metrics=none."
                )
        return info


def mnist_classifier(weights: str | Path | None = None, min_reference_accuracy: float = 0.9) -> MNISTClassifierFeatures:
    """The shared MNIST classifier extractor (``"features"``, ``"logits"``) for ``weights`` (None: the weights
    shipped in genlab): every ``metrics=mnist`` entry gets the same instance, so one forward pass per batch."""
    return shared_extractor(
        "mnist", weights, lambda: MNISTClassifierFeatures(weights, min_reference_accuracy=min_reference_accuracy), min_reference_accuracy
    )
