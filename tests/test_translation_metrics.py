"""The translation metrics on known inputs: the ground truth scores perfectly, class preservation of real digits is
the classifier's accuracy on them, data without a ground truth or classes is refused, and the ground-truth lookup
finds the held-out pairs of any seeded draw."""

import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from conftest import compose_config
from genlab.evaluation import prepare_metrics, score_samples
from genlab.metrics import UnsupportedDataError, mnist_classifier
from genlab.data.batch import DomainTransfer
from genlab.metrics import metric_entries
from genlab.metrics.translation import (
    ClassPreservation,
    GroundTruthL1,
    GroundTruthPSNR,
    GroundTruthSSIM,
    TargetDomainAccuracy,
)
from test_translation_data import write_celeba_attributes


def datamodule(tmp_path: Path, name: str, *overrides: str):
    data = instantiate(compose_config(tmp_path, [f"data={name}", *overrides]).data)
    data.prepare_data()
    data.setup("fit")
    return data


def ground_truth_metrics(data) -> dict:
    return prepare_metrics({"l1": GroundTruthL1(), "psnr": GroundTruthPSNR(), "ssim": GroundTruthSSIM()}, data, "cpu")


def scores(metrics: dict, samples: torch.Tensor, sources) -> dict[str, float]:
    for metric in metrics.values():
        metric.reset()
        metric.update(samples, sources)
    return {name: float(metric.compute()) for name, metric in metrics.items()}


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    return datamodule(tmp_path_factory.mktemp("edges"), "mnist_edges2digits")


def test_the_ground_truth_itself_scores_l1_0_psnr_inf_ssim_1(edges):
    sources = edges.conditions(40, "source", seed=3)
    truth = edges.true_target(sources)
    assert truth.shape == sources.shape and not torch.equal(truth, sources)
    assert scores(ground_truth_metrics(edges), truth, sources) == {"l1": 0.0, "psnr": math.inf, "ssim": pytest.approx(1.0)}


def test_values_match_their_definitions_on_known_errors(edges):
    sources = edges.conditions(16, "source", seed=0)
    truth = edges.true_target(sources)
    off = (truth + 0.2).clamp(-1, 1)  # 0.1 on [0, 1] where not clipped
    values = scores(ground_truth_metrics(edges), off, sources)
    assert values["l1"] == pytest.approx((off - truth).abs().mean().item(), rel=1e-5)
    per_image_mse = ((off - truth) / 2).square().flatten(1).mean(1)  # on [0, 1]
    assert values["psnr"] == pytest.approx((10 * torch.log10(1 / per_image_mse)).mean().item(), rel=1e-4)
    assert 0 < values["ssim"] < 1
    # the edge maps themselves (the identity translation) are far worse than the ground truth
    identity = scores(ground_truth_metrics(edges), sources, sources)
    assert identity["l1"] > 0.1 and identity["ssim"] < 0.8


def test_class_preservation_of_real_digits_is_the_classifier_accuracy(edges):
    sources = edges.conditions(300, "source", seed=1)
    truth = edges.true_target(sources)
    metric = prepare_metrics({"cp": ClassPreservation(mnist_classifier())}, edges, "cpu")["cp"]
    metric.update(truth, sources)
    classes = edges.source_classes(sources)
    assert torch.equal(classes, edges.source_labels(300, seed=1))  # the lookup agrees with the seeded draw
    accuracy = (mnist_classifier()(truth)["logits"].argmax(1) == classes).float().mean().item()
    assert float(metric.compute()) == pytest.approx(accuracy) and accuracy > 0.95
    metric.reset()
    metric.update(torch.flip(truth, dims=[0]), sources)  # right digits, wrong sources: about chance
    assert float(metric.compute()) < 0.3


def test_score_samples_logs_named_values_for_a_perfect_translator(edges):
    class Perfect(torch.nn.Module):
        conditioning = "source"
        device = torch.device("cpu")

        def sample(self, n, *, condition=None, generator=None):
            return edges.true_target(condition)

    metrics = ground_truth_metrics(edges) | prepare_metrics({"class_preservation": ClassPreservation(mnist_classifier())}, edges, "cpu")
    values = score_samples(Perfect(), metrics, num_samples=120, batch_size=50, seed=0, datamodule=edges)
    assert values["l1"] == 0 and values["psnr"] == math.inf and values["ssim"] == pytest.approx(1.0)
    assert values["class_preservation"] > 0.95


def test_thin2thick_is_scored_against_its_known_mapping(tmp_path: Path):
    data = datamodule(tmp_path, "mnist_thin2thick")  # built once per test session, in its cache
    sources = data.conditions(20, "source", seed=0)
    metrics = ground_truth_metrics(data)
    assert scores(metrics, data.true_target(sources), sources)["l1"] == 0.0
    assert scores(metrics, sources, sources)["l1"] > 0.05  # thin digits are not the thick ones
    cp = prepare_metrics({"cp": ClassPreservation(mnist_classifier())}, data, "cpu")["cp"]
    cp.update(data.true_target(sources), sources)
    assert float(cp.compute()) > 0.9


def test_data_without_ground_truth_or_classes_is_refused_by_name(tmp_path: Path):
    reversed_map = datamodule(tmp_path, "mnist_thin2thick", "data.direction=BtoA")
    with pytest.raises(UnsupportedDataError, match="ground truth.*data=mnist_thin2thick"):
        ground_truth_metrics(reversed_map)
    root = tmp_path / "photos"
    for split, count in (("trainA", 3), ("trainB", 2)):
        (root / split).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (40, 36), (40 * i, 90, 200)).save(root / split / f"{i}.jpg")
    unpaired = datamodule(tmp_path, "unpaired", f"data.root={root}", "data.image_size=32")
    with pytest.raises(UnsupportedDataError, match="ground truth"):
        ground_truth_metrics(unpaired)
    with pytest.raises(UnsupportedDataError, match="classes of the sources"):
        prepare_metrics({"cp": ClassPreservation(mnist_classifier())}, unpaired, "cpu")
    # the default translation metrics leave out what the data cannot give and keep the rest
    metrics = compose_config(tmp_path, ["model=pix2pix", "data=unpaired", f"data.root={root}"]).metrics
    kept = prepare_metrics({k: instantiate(v) for k, v in metrics.items() if hasattr(v, "keys")}, unpaired, "cpu", "skip")
    assert kept == {}  # colour photos: no ground truth, no classes, no digits for the MNIST classifier


def test_sources_outside_the_held_out_split_have_no_ground_truth(edges):
    with pytest.raises(ValueError, match="not items of its held-out split"):
        edges.true_target(torch.zeros(2, 1, 32, 32))


# -- multi-domain translation (StarGAN on mnist_domains: the styles are known) --------------------------------------
@pytest.fixture(scope="module")
def styles(tmp_path_factory):
    return datamodule(tmp_path_factory.mktemp("styles"), "mnist_domains")


def domain_metrics(data) -> dict:
    return ground_truth_metrics(data) | prepare_metrics(
        {"class_preservation": ClassPreservation(mnist_classifier()), "target_accuracy": TargetDomainAccuracy()}, data, "cpu"
    )


def test_the_exact_multi_domain_translation_scores_perfectly_and_the_identity_map_does_not(styles):
    condition = styles.conditions(200, "domain_transfer", seed=1)
    truth = styles.true_target(condition)
    assert truth.shape == (200, 3, 32, 32)
    # the truth is the target style of the source's own digit: translating a source into its own domain gives it back
    # (to one 8-bit level: the orange files are rounded)
    own = styles.true_target(DomainTransfer(condition.source, condition.source_domains))
    assert (own - condition.source).abs().max() <= 2 / 255 + 1e-6

    metrics = domain_metrics(styles)
    exact = scores(metrics, truth, condition)
    assert exact["l1"] == 0 and exact["psnr"] == math.inf and exact["ssim"] == pytest.approx(1.0)
    assert exact["target_accuracy"] > 0.97 and exact["class_preservation"] > 0.95
    identity = scores(metrics, condition.source, condition)  # the source unchanged: never its target domain
    assert identity["target_accuracy"] < 0.03 and identity["l1"] > 0.5 and identity["ssim"] < 0.5


def test_the_style_reader_reads_real_images_and_ignores_the_digit(styles):
    held_out = styles.batch_of(styles.val_set, range(len(styles.val_set)))
    assert (styles.read_domains(held_out.images) == held_out.labels).float().mean() > 0.98
    condition = styles.conditions(300, "domain_transfer", seed=2)
    other_digits = styles.true_target(DomainTransfer(torch.roll(condition.source, 1, dims=0), condition.target))
    values = scores(domain_metrics(styles), other_digits, condition)  # each target's style, another image's digit
    assert values["target_accuracy"] > 0.95 and values["class_preservation"] < 0.3  # about chance among 10 digits
    # the digit view undoes each style: the classifier reads the exact translations into every domain alike
    classes = styles.source_classes(condition.source)
    for k, name in enumerate(styles.domain_names):
        into_k = styles.true_target(DomainTransfer(condition.source, torch.full((300,), k)))
        view = styles.digit_view(into_k, torch.full((300,), k))
        accuracy = (mnist_classifier()(view)["logits"].argmax(1) == classes).float().mean().item()
        assert view.shape == (300, 1, 32, 32) and accuracy > 0.9, name


def test_stargan_translation_metrics_are_on_by_default_and_skip_what_celeba_cannot_feed(styles, tmp_path: Path):
    cfg = compose_config(tmp_path, ["model=stargan", "data=mnist_domains"])
    kept = prepare_metrics(metric_entries(instantiate(cfg.metrics)), styles, "cpu", "skip")
    assert set(kept) == {"l1", "psnr", "ssim", "class_preservation", "target_accuracy"}  # colour: no classifier FID
    write_celeba_attributes(tmp_path / "data", n=8)
    celeba = datamodule(tmp_path, "celeba_domains", f"data.root={tmp_path / 'data'}", "data.held_out_count=3",
                        "data.image_size=32")
    for name, metric in domain_metrics_unprepared().items():
        with pytest.raises(UnsupportedDataError) as refused:
            prepare_metrics({name: metric}, celeba, "cpu")
        assert "data=celeba_domains" in str(refused.value) and "\n" not in str(refused.value)


def domain_metrics_unprepared() -> dict:
    return {"l1": GroundTruthL1(), "class_preservation": ClassPreservation(mnist_classifier()),
            "target_accuracy": TargetDomainAccuracy()}
