"""Sample-quality metrics: closed forms, known cases, the shipped MNIST classifier, the Inception weights path."""

import ast
import csv
import gc
import logging
import math
import weakref
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from hydra.utils import instantiate
from torch.utils.data import Subset

from torchmetrics.image.fid import _compute_fid
from torchmetrics.image.inception import InceptionScore as TorchmetricsInceptionScore

from conftest import compose_config, run_script
from genlab.data import MNIST5kDataModule, RingDataModule
from genlab.metrics import (
    INCEPTION_WEIGHTS_FILE,
    INCEPTION_WEIGHTS_URL,
    ClassCoverage,
    FrechetDistance,
    InceptionScore,
    InceptionWeightsUnavailable,
    KernelDistance,
    PrecisionRecall,
    RawFeatures,
    UnsupportedDataError,
    frechet_distance,
    inception_v3,
    metric_entries,
    mnist_classifier,
    reference_features,
)
from genlab.evaluation import flatten_result, prepare_metrics
from genlab.metrics import classifier, extractors
from genlab.metrics.classifier import default_weights_path, load_classifier_net
from genlab.metrics.divergences import kl_to_uniform
from genlab.metrics.feature_metrics import inception_score
from genlab.metrics.modes import ModeCoverage
from genlab.metrics.reference import subset_indices
from test_eval import TINY_RUN

# The shipped classifier's held-out accuracy on the 500 MNIST-5k digits it never saw (measured: see docs/evaluation.md).
MIN_HELD_OUT_ACCURACY = 0.97
# Its Inception Score of the 4500 MNIST-5k training digits, 10 splits: measured 7.92 (2026-12-01). Not near the
# maximum 10: the classifier was trained with label smoothing 0.05, so even certain predictions keep ~0.2 nats of
# entropy (exp(ln 10 - 0.23) = 7.9).
MIN_REAL_IS = 7.5


@pytest.fixture(scope="module")
def mnist5k() -> MNIST5kDataModule:
    datamodule = MNIST5kDataModule(image_size=32)
    datamodule.setup("fit")
    return datamodule


def stack(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(images), torch.as_tensor(labels)


def random_covariance(d: int, generator: torch.Generator) -> torch.Tensor:
    a = torch.randn(d, d, generator=generator, dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


# ------------------------------------------------------------------------------------------------ Fréchet distance
def test_frechet_distance_of_gaussians_equals_the_closed_form():
    g = torch.Generator().manual_seed(0)
    # Diagonal covariances: d^2 = |mu1 - mu2|^2 + sum_i (a_i + b_i - 2 sqrt(a_i b_i)).
    mu1, mu2 = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    a, b = torch.rand(5, generator=g, dtype=torch.float64) + 0.5, torch.rand(5, generator=g, dtype=torch.float64) + 0.5
    closed = ((mu1 - mu2) ** 2).sum() + (a + b - 2 * (a * b).sqrt()).sum()
    assert float(frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b))) == pytest.approx(float(closed), rel=1e-9)

    # Full, non-commuting covariances: against the textbook formula with scipy's matrix square root.
    s1, s2 = random_covariance(6, g), random_covariance(6, g)
    mu1, mu2 = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    covmean = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    textbook = float(((mu1 - mu2) ** 2).sum()) + float(np.trace(s1.numpy() + s2.numpy() - 2 * covmean))
    assert float(frechet_distance(mu1, s1, mu2, s2)) == pytest.approx(textbook, rel=1e-8)
    assert float(frechet_distance(mu1, s1, mu2, s2)) == pytest.approx(float(_compute_fid(mu1, s1, mu2, s2)), rel=1e-8)
    assert float(frechet_distance(mu1, s1, mu1, s1)) == pytest.approx(0.0, abs=1e-8)


def test_fid_metric_on_gaussian_samples_converges_to_the_closed_form():
    g = torch.Generator().manual_seed(1)
    d, n = 3, 40_000
    s1, s2 = random_covariance(d, g), random_covariance(d, g)
    mu1, mu2 = torch.zeros(d, dtype=torch.float64), torch.tensor([1.0, -0.5, 0.25], dtype=torch.float64)
    real = torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(s1).T + mu1
    fake = torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(s2).T + mu2

    fid = FrechetDistance(RawFeatures(d), feature="raw")
    fid.load_reference(real.float())  # the cached-reference path that prepare() uses
    for chunk in fake.float().split(5000):
        fid.update(chunk)
    assert float(fid.compute()) == pytest.approx(float(frechet_distance(mu1, s1, mu2, s2)), rel=0.03)

    fid.reset()  # reset() keeps the reference: the same real set scored against itself is 0
    fid.update(real.float())
    assert abs(float(fid.compute())) < 1e-3


# ------------------------------------------------------------------------------------------- precision / recall
def two_clusters(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 2, generator=g) * 0.5 + torch.tensor([-10.0, 0.0]), torch.randn(n, 2, generator=g) * 0.5 + torch.tensor([10.0, 0.0])


def precision_recall(real: torch.Tensor, fake: torch.Tensor) -> tuple[float, float]:
    metric = PrecisionRecall(RawFeatures(2), feature="raw", neighborhood=3)
    metric.load_reference(real)
    metric.update(fake)
    values = metric.compute()
    return float(values["precision"]), float(values["recall"])


def test_precision_recall_on_known_cases():
    g = torch.Generator().manual_seed(0)
    left, right = two_clusters(500, g)
    real = torch.cat([left, right])
    more_left, more_right = two_clusters(500, g)
    # Same distribution: nearly every sample is inside the other set's manifold.
    precision, recall = precision_recall(real, torch.cat([more_left, more_right]))
    assert precision > 0.95 and recall > 0.95
    # Mode dropping: all samples from the left cluster (twice as many): precise, but half of the real data is missed.
    precision, recall = precision_recall(real, torch.cat([more_left, two_clusters(500, g)[0]]))
    assert precision > 0.95 and recall == pytest.approx(0.5, abs=0.05)
    # Samples far from every real point: neither.
    assert precision_recall(real, torch.cat([more_left, more_right]) + 100.0) == (0.0, 0.0)


# ------------------------------------------------------------------------------------------- the MNIST classifier
def test_shipped_classifier_accuracy_on_held_out_digits(mnist5k: MNIST5kDataModule):
    net, meta = load_classifier_net()
    images, labels = stack(mnist5k.val_set)  # the 500 digits the classifier was not trained on
    with torch.no_grad():
        accuracy = (net(images).argmax(1) == labels).float().mean().item()
    assert len(labels) == 500
    assert accuracy >= MIN_HELD_OUT_ACCURACY
    assert accuracy == pytest.approx(meta["held_out_accuracy"], abs=1e-6)  # the number reported in the docs
    weights = Path(__file__).resolve().parents[1] / "src" / "genlab" / "assets" / "mnist_classifier.pt"
    assert weights.stat().st_size < 1_000_000


def test_class_coverage_of_real_digits_is_ten_of_ten_and_drops_with_missing_digits(mnist5k: MNIST5kDataModule):
    images, labels = stack(mnist5k.val_set)
    coverage = ClassCoverage(mnist_classifier())
    coverage.update(images)
    values = coverage.compute()
    assert int(values["covered"]) == 10
    assert float(values["kl_uniform"]) < 0.02
    assert sum(float(values[f"fraction_{c}"]) for c in range(10)) == pytest.approx(1.0)

    coverage.reset()
    coverage.update(images[labels < 3])  # a "mode-collapsed generator" that only draws 0, 1 and 2
    values = coverage.compute()
    assert int(values["covered"]) == 3
    assert float(values["kl_uniform"]) == pytest.approx(math.log(10 / 3), abs=0.05)


def test_extractor_factories_share_one_instance_per_weights_and_let_it_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # The classifier factory lives with the classifier; extractors.py knows nothing of it (no import cycle).
    assert mnist_classifier is classifier.mnist_classifier and mnist_classifier.__module__ == "genlab.metrics.classifier"
    tree = ast.parse(Path(extractors.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not hasattr(extractors, "mnist_classifier") and not any(name.startswith("genlab") for name in imported), imported

    weights = default_weights_path()
    monkeypatch.chdir(weights.parent)
    first = mnist_classifier(weights)
    assert mnist_classifier(Path(weights.name)) is first, "the same file, spelt relative: one instance"
    assert mnist_classifier(weights, min_reference_accuracy=0.5) is not first, "other options: another instance"
    assert mnist_classifier(weights).weights == str(weights)

    released = weakref.ref(first)
    del first
    gc.collect()
    assert released() is None, "the registry must not keep an extractor alive that no metric holds"
    assert isinstance(mnist_classifier(weights), classifier.MNISTClassifierFeatures)


def test_kl_to_uniform_known_values_and_both_coverage_metrics_use_it():
    assert float(kl_to_uniform(torch.tensor([5, 5, 5, 5]))) == pytest.approx(0.0, abs=1e-7)
    assert float(kl_to_uniform(torch.tensor([0, 12, 0, 0, 0]))) == pytest.approx(math.log(5), rel=1e-6)
    # p = (3/4, 1/4) against (1/2, 1/2): 3/4 ln(3/2) + 1/4 ln(1/2)
    assert float(kl_to_uniform(torch.tensor([3, 1]))) == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5), rel=1e-6)
    for bad in (torch.zeros(3, dtype=torch.long), torch.tensor([1, -1]), torch.ones(2, 2)):
        with pytest.raises(ValueError, match="kl_to_uniform"):
            kl_to_uniform(bad)

    counts = torch.tensor([7, 0, 2, 1])
    coverage = ClassCoverage(RawFeatures(4), feature="raw")
    coverage.update(torch.eye(4)[torch.repeat_interleave(torch.arange(4), counts)])  # one-hot "logits" per class
    mixture = ModeCoverage(centers=torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]]), std=0.1)
    mixture.update(torch.tensor([[0.0, 0.0]] * 7 + [[0.0, 10.0]] * 2 + [[10.0, 10.0]]))
    expected = float(kl_to_uniform(counts))
    assert expected == pytest.approx(sum(c / 10 * math.log(c / 10 * 4) for c in (7, 2, 1)), rel=1e-6)
    assert float(coverage.compute()["kl_uniform"]) == pytest.approx(expected, rel=1e-6)
    assert float(mixture.compute()["reverse_kl"]) == pytest.approx(expected, rel=1e-6)
    mixture.reset()
    mixture.update(torch.tensor([[5.0, 5.0]]))  # no high-quality sample: scored as total collapse
    assert float(mixture.compute()["reverse_kl"]) == pytest.approx(math.log(4), rel=1e-6)


def test_classifier_fid_of_real_data_with_itself_is_zero_and_grows_with_noise(mnist5k: MNIST5kDataModule, tmp_path: Path):
    extractor = mnist_classifier()
    fid = FrechetDistance(extractor, feature="features", real_samples=1500, cache_dir=tmp_path)
    kid = KernelDistance(extractor, feature="features", subset_size=250, subsets=10, real_samples=1500, cache_dir=tmp_path)
    fid.prepare(mnist5k)  # reference: a seeded subset of 1500 training digits
    kid.prepare(mnist5k)
    reference_images, _ = stack(Subset(mnist5k.train_set, subset_indices(len(mnist5k.train_set), 1500)))
    fid.update(reference_images)
    assert abs(float(fid.compute())) < 1e-3  # the reference images against their own statistics

    val_images, _ = stack(mnist5k.val_set)
    noise = torch.randn(val_images.shape, generator=torch.Generator().manual_seed(0))
    fids, kids = [], []
    for sigma in (0.0, 0.1, 0.25, 0.5, 1.0):
        fid.reset(), kid.reset()
        noisy = (val_images + sigma * noise).clamp(-1, 1)
        fid.update(noisy), kid.update(noisy)
        fids.append(float(fid.compute()))
        torch.manual_seed(0)
        kids.append(float(kid.compute()[0]))
    assert all(a < b for a, b in zip(fids, fids[1:])), fids
    assert all(a < b for a, b in zip(kids[1:], kids[2:])), kids  # KID at sigma 0 and 0.1 are both ~0 (unbiased)
    assert fids[0] < 0.1 * fids[-1]


def test_kid_with_fewer_samples_than_subset_size_uses_them_all_and_warns(mnist5k: MNIST5kDataModule, tmp_path: Path, caplog):
    """eval.py num_samples=500 with the configured subset_size=1000 (it used to stop with a ValueError)."""
    extractor = mnist_classifier()
    configured = KernelDistance(extractor, feature="features", subsets=10, subset_size=1000, cache_dir=tmp_path)
    explicit = KernelDistance(extractor, feature="features", subsets=10, subset_size=500, cache_dir=tmp_path)
    configured.prepare(mnist5k), explicit.prepare(mnist5k)  # all 4500 training digits
    samples, _ = stack(mnist5k.val_set)  # 500 "generated" samples
    configured.update(samples), explicit.update(samples)

    with caplog.at_level(logging.WARNING, logger="genlab.metrics.feature_metrics"):
        torch.manual_seed(0)
        mean, std = configured.compute()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "subset_size=1000" in warnings[0] and "subsets of 500" in warnings[0] and "num_samples" in warnings[0]
    assert "metrics.real_samples" not in warnings[0], "4500 real images are enough: only num_samples is short"
    assert math.isfinite(float(mean)) and abs(float(mean)) < 0.01  # real digits against real digits
    torch.manual_seed(0)
    assert torch.equal(torch.stack([mean, std]), torch.stack(explicit.compute()))
    assert configured.subset_size == 1000, "the configured size is back for the next evaluation"

    caplog.clear()
    configured.reset()  # the callback's next evaluation with the same count: no second warning
    configured.update(samples)
    with caplog.at_level(logging.WARNING, logger="genlab.metrics.feature_metrics"):
        configured.compute()
        configured.update(stack(Subset(mnist5k.train_set, range(500)))[0])  # then 1000 samples: the configured size
        torch.manual_seed(1)
        at_1000 = configured.compute()
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    fresh = KernelDistance(extractor, feature="features", subsets=10, subset_size=1000, cache_dir=tmp_path)
    fresh.prepare(mnist5k)
    fresh.update(samples), fresh.update(stack(Subset(mnist5k.train_set, range(500)))[0])
    torch.manual_seed(1)
    assert torch.equal(torch.stack(at_1000), torch.stack(fresh.compute()))

    configured.reset()
    configured.update(samples[:1])
    with pytest.raises(ValueError, match=r"at least 2 generated and 2 real images, but has 1 generated.*num_samples"):
        configured.compute()


def test_reference_cache_is_keyed_by_dataset_size_and_extractor(tmp_path: Path):
    extractor = mnist_classifier()
    extractor.reference_memo.clear()  # other tests of this process filled the in-memory layer
    small = MNIST5kDataModule(image_size=32)
    n = 1000  # a seeded subset of the 4500 training digits keeps this test fast
    first = reference_features(extractor, small, ["features"], num_samples=n, cache_dir=tmp_path)
    extractor.reference_memo.clear()  # as in a new process: must come from disk, identical
    again = reference_features(extractor, small, ["features"], num_samples=n, cache_dir=tmp_path)
    assert not first.info["cached"] and again.info["cached"] and again.info["cache"] == first.info["cache"]
    assert torch.equal(first.features["features"], again.features["features"]) and len(first.labels) == n

    bigger = reference_features(extractor, MNIST5kDataModule(image_size=64, channels=3), ["features"], num_samples=n, cache_dir=tmp_path)
    fewer = reference_features(extractor, small, ["features"], num_samples=n // 2, cache_dir=tmp_path)
    other_split = reference_features(extractor, MNIST5kDataModule(image_size=32, split_seed=1), ["features"], num_samples=n, cache_dir=tmp_path)
    raw = reference_features(RawFeatures(32 * 32), small, ["raw"], num_samples=n, cache_dir=tmp_path)
    files = {r.info["cache"] for r in (first, bigger, fewer, other_split, raw)}
    assert len(files) == 5 and len(list((tmp_path / "reference_features").glob("*.pt"))) == 5
    assert f"mnist5kdatamodule_3x64x64_n{n}_mnist-classifier_" in Path(bigger.info["cache"]).name
    # Resized, 3-channel MNIST is still MNIST to the classifier: same digits, nearly the same features.
    assert bigger.info["reference_accuracy"] > 0.97


class InvertedMNIST5k(MNIST5kDataModule):
    """White digits on black inverted: labelled 10-class grayscale data that is not MNIST-like."""

    def build_datasets(self):
        train, val = super().build_datasets()
        train.dataset.tensors = (-train.dataset.tensors[0], train.dataset.tensors[1])
        return train, val


class ColourMNIST5k(MNIST5kDataModule):
    def build_datasets(self):
        train, val = super().build_datasets()
        images = train.dataset.tensors[0].clone()
        images[:, 0] = -1.0  # no red: colour images
        train.dataset.tensors = (images, train.dataset.tensors[1])
        return train, val


def test_mnist_metrics_refuse_data_the_classifier_cannot_read(tmp_path: Path):
    fid = FrechetDistance(mnist_classifier(), feature="features", cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"labels only .*% of the reference images .* metrics=inception"):
        fid.prepare(InvertedMNIST5k(image_size=32))
    with pytest.raises(ValueError, match="are in colour.*metrics=inception"):
        fid.prepare(ColourMNIST5k(image_size=32, channels=3))
    assert not list(tmp_path.rglob("*.pt")), "a refused dataset must not leave a cache behind"


def test_default_metrics_skip_data_the_classifier_refuses_and_explicit_mnist_stops(tmp_path: Path):
    callbacks = {}
    for choice in ("default", "mnist"):
        cfg = compose_config(tmp_path, [f"metrics={choice}", f"metrics.cache_dir={tmp_path}", "metrics.real_samples=1000"])
        callbacks[choice] = instantiate(cfg.callbacks.sample_metrics)
    assert callbacks["default"].on_unsupported_data == "skip" and callbacks["mnist"].on_unsupported_data == "error"
    assert sorted(callbacks["default"].metrics) == ["classes", "cond", "fid", "is", "kid", "pr"]

    not_digits = InvertedMNIST5k(image_size=32)
    assert prepare_metrics(callbacks["default"].metrics, not_digits, "cpu", "skip") == {}  # python train.py data=cifar10
    with pytest.raises(UnsupportedDataError, match="metrics=mnist needs MNIST-like digits"):
        prepare_metrics(callbacks["mnist"].metrics, not_digits, "cpu", "error")  # ... metrics=mnist data=cifar10
    points = RingDataModule(dim=2, num_modes=8, num_points=1000)  # python train.py model=toy_gan data=ring8
    assert prepare_metrics(callbacks["default"].metrics, points, "cpu", "skip") == {}
    with pytest.raises(UnsupportedDataError, match=r"shape \(N, 1 or 3, H, W\).*\(250, 2\)"):
        prepare_metrics(callbacks["mnist"].metrics, points, "cpu", "error")
    kept = prepare_metrics(callbacks["default"].metrics, MNIST5kDataModule(image_size=32), "cpu", "skip")
    assert sorted(kept) == ["classes", "cond", "fid", "is", "kid", "pr"]


def test_mnist_config_builds_metrics_that_share_one_classifier(tmp_path: Path):
    cfg = compose_config(tmp_path, ["metrics=mnist"])
    built = instantiate(cfg.metrics)
    metrics = metric_entries(built)
    assert sorted(metrics) == ["classes", "cond", "fid", "is", "kid", "pr"] and built["real_samples"] == 10000
    assert metrics["is"].feature == "logits" and metrics["is"].splits == 10 and metrics["is"].real_samples == 10000
    extractors = {id(m.inception.extractor if hasattr(m, "inception") else m.classifier.extractor) for m in metrics.values()}
    assert len(extractors) == 1
    with pytest.raises(TypeError, match="metrics.oops"):
        metric_entries({"oops": torch.nn.Linear(1, 1)})


# ------------------------------------------------------------------------------------------------ Inception Score
@pytest.mark.filterwarnings("ignore:Metric `InceptionScore` will save all extracted features")
def test_inception_score_is_torchmetrics_formula_with_known_extremes():
    logits = torch.randn(1000, 10, generator=torch.Generator().manual_seed(0)) * 3
    reference = TorchmetricsInceptionScore(feature=torch.nn.Identity(), splits=10)
    reference.update(logits)
    torch.manual_seed(0)
    expected = reference.compute()
    torch.manual_seed(0)
    assert torch.allclose(torch.stack(inception_score(logits, 10)), torch.stack(expected), rtol=1e-5)

    certain = 100.0 * torch.eye(10).repeat(100, 1)  # 10 balanced classes, each predicted with certainty
    mean, std = inception_score(certain, splits=1)
    assert float(mean) == pytest.approx(10.0, rel=1e-6) and math.isnan(float(std))  # the maximum, K; one split
    assert float(inception_score(certain, splits=10)[0]) < 10.0  # random splits are not exactly balanced
    assert float(inception_score(100.0 * torch.eye(10)[[3] * 200], splits=10)[0]) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least 10 images.*metrics.is.splits"):
        inception_score(logits[:5], splits=10)


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric InceptionScore was called before")
def test_classifier_inception_score_of_real_digits_is_high_and_of_one_digit_near_one(mnist5k: MNIST5kDataModule, tmp_path: Path):
    extractor = mnist_classifier()
    extractor.reference_memo.clear()  # other tests of this process filled the in-memory layer: this one counts files
    fid = FrechetDistance(extractor, feature="features", cache_dir=tmp_path)
    score = InceptionScore(extractor, feature="logits", splits=10, cache_dir=tmp_path)
    with pytest.raises(RuntimeError, match="before any update"):
        score.compute()
    shared = fid.prepare(mnist5k)
    assert score.prepare(mnist5k) is shared, "IS's real images come from FID's reference pass, not a second one"
    assert len(list((tmp_path / "reference_features").glob("*.pt"))) == 1
    assert MIN_REAL_IS < score.real_score <= 10.0  # the 4500 training digits

    images, labels = stack(mnist5k.train_set)
    score.update(images)
    torch.manual_seed(0)
    values = score.compute()
    assert set(values) == {"is", "std", "real"}
    assert float(values["is"]) == pytest.approx(score.real_score, rel=0.02)  # the same images, another permutation
    assert set(flatten_result("is", values)) == {"is", "is_std", "is_real"}  # metrics/is, metrics/is_std, metrics/is_real

    for digit in (1, 7):  # a generator that draws one digit only
        score.reset()  # keeps the real score
        score.update(images[labels == digit])
        values = score.compute()
        assert 1.0 <= float(values["is"]) < 1.2 and float(values["real"]) == score.real_score


# ------------------------------------------------------------------------------------------------ InceptionV3 path
@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A weights file of the exact torch-fidelity InceptionV3 architecture with random init (no download)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class RandomInit(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # keep torch's random init
            return None

    folder = tmp_path_factory.mktemp("inception")
    empty = folder / "empty.pth"
    torch.save({}, empty)
    torch.manual_seed(0)
    state = RandomInit("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty)).state_dict()
    path = folder / INCEPTION_WEIGHTS_FILE
    torch.save(state, path)
    return path, state


@pytest.mark.slow  # InceptionV3 forward passes on a shared 2-core CPU: 15-40 s
def test_inception_metrics_load_local_weights_through_torch_fidelity(random_inception_weights, tmp_path: Path):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path, state = random_inception_weights
    cfg = compose_config(
        tmp_path,
        ["metrics=inception", f"metrics.inception_weights={path}", "metrics.kid.subset_size=3", "metrics.is.splits=2",
         "metrics.real_samples=8", f"metrics.cache_dir={tmp_path}"],
    )
    metrics = metric_entries(instantiate(cfg.metrics))
    assert sorted(metrics) == ["fid", "is", "kid", "pr"]
    extractor = metrics["fid"].extractor
    assert all(m.inception.extractor is extractor for m in metrics.values()), "one InceptionV3 for all four metrics"
    assert isinstance(extractor.net, FeatureExtractorInceptionV3) and extractor.net.use_antialias is False
    assert torch.equal(extractor.net.state_dict()["Mixed_7c.branch_pool.conv.weight"], state["Mixed_7c.branch_pool.conv.weight"])

    passes = []
    extractor.net.Conv2d_1a_3x3.register_forward_hook(lambda *args: passes.append(1))
    g = torch.Generator().manual_seed(0)
    real = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1  # grayscale, not 299 px: converted inside
    fake = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1
    metrics["fid"].update(real, real=True)
    metrics["kid"].update(real, real=True)
    metrics["pr"].load_reference(extractor(real)["2048"])
    for metric in metrics.values():
        metric.update(fake)
    assert len(passes) == 2, "the four metrics must share one forward pass per batch"
    # FID's compute at 2048 dimensions costs a minute on a 2-core CPU; its code is the one tested above on classifier
    # features. Here: the pool3 features reached its states.
    assert int(metrics["fid"].fake_features_num_samples) == 4 and int(metrics["fid"].real_features_num_samples) == 4
    assert torch.isfinite(metrics["fid"].fake_features_cov_sum).all() and metrics["fid"].fake_features_sum.abs().sum() > 0
    kid_mean, _ = metrics["kid"].compute()
    is_values = metrics["is"].compute()  # not prepared here: no real-data score
    assert math.isfinite(float(kid_mean)) and math.isfinite(float(is_values["is"])) and set(is_values) == {"is", "std"}
    assert set(metrics["pr"].compute()) == {"precision", "recall", "f_score"}

    # The real-data IS of metrics=inception reuses FID's reference pass and cache file (GPU-minutes for 10k images).
    passes.clear()
    datamodule = MNIST5kDataModule(image_size=32)
    shared = metrics["fid"].prepare(datamodule)
    assert metrics["is"].prepare(datamodule) is shared and len(passes) == 1, "one InceptionV3 pass over 8 real images"
    assert set(shared.features) == {"2048", "logits_unbiased"} and len(list(tmp_path.rglob("*.pt"))) == 1
    assert 1.0 <= metrics["is"].real_score <= 2.0 and set(metrics["is"].compute()) == {"is", "std", "real"}


def test_inception_without_weights_offline_names_file_url_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty torch.hub cache
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens there: the download fails as offline
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(InceptionWeightsUnavailable) as raised:
        inception_v3(None)
    message = str(raised.value)
    assert INCEPTION_WEIGHTS_FILE in message and INCEPTION_WEIGHTS_URL in message and "metrics.inception_weights=" in message
    assert not (tmp_path / "torch" / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILE).exists()

    with pytest.raises(FileNotFoundError, match=r"metrics.inception_weights=.*no such file(.|\n)*" + INCEPTION_WEIGHTS_FILE):
        inception_v3(tmp_path / "nowhere.pth")


# ------------------------------------------------------------------------------------------------ a real run
@pytest.mark.slow
def test_default_training_logs_inception_score_and_kid_at_500_samples(tmp_path: Path):
    """``python train.py`` shrunk to four batches, with the default metrics and 500 samples per evaluation: IS and its
    real-data score are logged, and KID (subset_size 1000 configured) falls back to 500 with a warning."""
    result = run_script("train.py", [*TINY_RUN, "callbacks.sample_metrics.num_samples=500"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "KID: subset_size=1000" in result.stdout + result.stderr
    (run,) = (tmp_path / "outputs" / "runs").iterdir()
    with open(run / "csv" / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row.get("metrics/is")]
    assert len(rows) == 2, "evaluations after batches 2 and 4"
    for row in rows:
        assert 1.0 <= float(row["metrics/is"]) <= 10.0 and float(row["metrics/is_std"]) >= 0
        assert MIN_REAL_IS < float(row["metrics/is_real"]) <= 10.0 and math.isfinite(float(row["metrics/kid"]))
    assert float(rows[0]["metrics/is_real"]) == float(rows[1]["metrics/is_real"])
