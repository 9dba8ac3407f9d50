"""Cost of each metric path per 1000 samples: feature extraction, and each metric's compute().

    python bench/metrics_time.py [--inception-images 16] [--device cpu|cuda] [--threads N]

MNIST path: the shipped classifier on 1000 MNIST-5k digits, then FID/KID/PR/class coverage as configured in
conf/metrics/mnist.yaml. Inception path: InceptionV3 on a few images (extrapolated to 1000; ~5 img/s on our CPUs),
then the 2048-d FID/KID/PR computes on 1000 random feature vectors. Without the real weights (offline) the Inception
net is built from a random-init file of the same architecture: timings do not depend on the weight values.
Prints a table; results go to docs/evaluation.md with the machine and date.
"""

import argparse
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from genlab.data import MNIST5kDataModule
from genlab.metrics import (
    INCEPTION_WEIGHTS_FILE,
    ClassCoverage,
    FrechetDistance,
    InceptionScore,
    InceptionWeightsUnavailable,
    KernelDistance,
    PrecisionRecall,
    inception_v3,
    mnist_classifier,
)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def random_inception_file(folder: Path) -> Path:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class RandomInit(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            return None

    torch.save({}, folder / "empty.pth")
    net = RandomInit("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(folder / "empty.pth"))
    torch.save(net.state_dict(), folder / INCEPTION_WEIGHTS_FILE)
    return folder / INCEPTION_WEIGHTS_FILE


def bench_path(name, extractor, images_per_batch, batches, feature, extra_metrics, device, scale) -> list[tuple[str, float]]:
    metrics = {
        "fid": FrechetDistance(extractor, feature=feature),
        "kid": KernelDistance(extractor, feature=feature, subsets=20 if name == "mnist" else 100),
        "pr": PrecisionRecall(extractor, feature=feature),
        **extra_metrics,
    }
    for metric in metrics.values():
        metric.to(device)
    images = [torch.rand(images_per_batch, 1, 32, 32, device=device) * 2 - 1 for _ in range(batches)]
    extractor(images[0][:2])  # warm-up
    extract = sum(timed(lambda b=b: extractor(b)) for b in images) * scale
    rows = [(f"{name}: features of 1000 images", extract)]
    # computes on 1000 feature vectors, as after an evaluation of 1000 samples
    dim = extractor.feature_dims[feature]
    reference = torch.randn(4500 if name == "mnist" else 10000, dim, device=device)
    fake = torch.randn(1000, dim, device=device)
    for key in ("fid", "kid", "pr"):
        metrics[key].load_reference(reference)
    metrics["fid"].fake_features_sum, metrics["fid"].fake_features_cov_sum = fake.double().sum(0), fake.double().T @ fake.double()
    metrics["fid"].fake_features_num_samples = torch.tensor(1000, device=device)
    metrics["fid"].orig_dtype = torch.float32
    metrics["kid"].fake_features = [fake]
    metrics["pr"].fake_features = [fake]
    for key in ("fid", "kid", "pr"):
        rows.append((f"{name}: {key} compute ({dim}-d, 1000 vs {len(reference)})", timed(metrics[key].compute)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inception-images", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    rows = []
    classifier = mnist_classifier().to(device)
    rows += bench_path("mnist", classifier, 250, 4, "features", {"classes": ClassCoverage(classifier)}, device, 1.0)
    datamodule = MNIST5kDataModule(image_size=32)
    rows.append(("mnist: reference features, 4500 digits (once; then cached)", timed(lambda: FrechetDistance(classifier, feature="features", cache_dir=tempfile.mkdtemp()).to(device).prepare(datamodule))))

    with tempfile.TemporaryDirectory() as folder:
        try:
            inception = inception_v3(None)
            source = "real weights"
        except InceptionWeightsUnavailable:
            inception = inception_v3(random_inception_file(Path(folder)))
            source = "random-init weights of the same architecture (offline)"
        inception.to(device)
        n = args.inception_images
        rows += bench_path("inception", inception, n, 1, "2048", {"is": InceptionScore(inception)}, device, 1000 / n)
        rows[-4] = (f"inception: features of 1000 images (from {n})", rows[-4][1])

    print(f"metric cost per 1000 samples -- {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"device {device}, {date.today()}; InceptionV3 with {source}")
    print(f"| {'step':<62} | {'seconds':>8} |\n|{'-' * 64}|{'-' * 10}:|")
    for name, seconds in rows:
        print(f"| {name:<62} | {seconds:8.2f} |")


if __name__ == "__main__":
    main()
