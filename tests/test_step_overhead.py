"""What the per-batch overhead cuts keep: training-step values reach the loggers at the same steps with the same
values when Lightning's logging is skipped on the batches it does not write; the divergence guard still sees every
batch's losses; periodic callbacks the model cannot use are left out of the Trainer (bench/step_time.py --table toy
measures the overhead)."""

import csv
import functools
import os
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from conftest import SMALL_TOY, compose_config
from genlab.callbacks.divergence import TrainingDiverged, nonfinite_tensors
from genlab.run import train

TOY = [*SMALL_TOY, "data.num_points=2000", "trainer.max_epochs=1", "callbacks.sample_grid.every_n_steps=null"]


def logged_rows(run: Path) -> dict[int, dict[str, float]]:
    """step -> the training-step values the CSV logger wrote at that step."""
    (metrics,) = run.glob("csv/**/metrics.csv")
    rows = {}
    with open(metrics) as f:
        for row in csv.DictReader(f):
            if row.get("loss/d"):
                rows[int(row["step"])] = {k: float(v) for k, v in row.items() if "/" in k and v}
    return rows


def test_loggers_get_the_same_values_at_the_same_steps(tmp_path: Path):
    every_batch = compose_config(tmp_path / "a", [*TOY, "logger=csv", "max_batches=10", "trainer.log_every_n_steps=1"])
    every_fourth = compose_config(tmp_path / "b", [*TOY, "logger=csv", "max_batches=10", "trainer.log_every_n_steps=4"])
    train(every_batch)
    metrics = train(every_fourth)
    reference, written = logged_rows(tmp_path / "a" / "run"), logged_rows(tmp_path / "b" / "run")
    # Lightning writes on batches 4 and 8 (steps 3, 7) and the batch where training stops (max_batches: step 9)
    assert sorted(reference) == list(range(10))
    assert sorted(written) == [3, 7, 9]
    for step, values in written.items():
        assert values.keys() == reference[step].keys() >= {"loss/d", "loss/g", "d/real_score", "d/fake_score"}
        for key, value in values.items():
            assert value == pytest.approx(reference[step][key], rel=1e-6), (step, key)
    assert metrics["loss/g"] == pytest.approx(reference[9]["loss/g"], rel=1e-6)  # the last batch, as train() returns


def test_divergence_guard_sees_a_nan_loss_on_a_batch_lightning_does_not_write(tmp_path: Path, monkeypatch):
    from genlab.models import AdversarialModule

    original = AdversarialModule.discriminator_objective

    def nan_at_batch_3(self, batch, fake, latent):  # a non-finite loss that leaves the weights finite
        loss, logs = original(self, batch, fake, latent)
        if self.trainer.fit_loop.epoch_loop.total_batch_idx == 2:
            logs["loss/d"] = torch.tensor(float("nan"))
        return loss, logs

    monkeypatch.setattr(AdversarialModule, "discriminator_objective", nan_at_batch_3)
    cfg = compose_config(tmp_path, [*TOY, "logger=none", "max_batches=10", "trainer.log_every_n_steps=50"])
    with pytest.raises(TrainingDiverged, match=r"at batch 3 .*loss/d = nan"):
        train(cfg)


def test_the_fast_weight_check_names_exactly_the_nonfinite_tensors():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    assert nonfinite_tensors(net) == []
    with torch.no_grad():
        net[0].weight[1, 2] = float("inf")
        net[1].running_var[0] = float("nan")
        net[2].bias.fill_(3e38)  # huge but finite: the fast sum overflows, the exact check clears it
        net[2].weight.fill_(3e38)
    assert nonfinite_tensors(net) == ["0.weight", "1.running_var"]
    with torch.no_grad():
        net[0].weight[1, 2] = 0.0
        net[1].running_var[0] = 1.0
    assert nonfinite_tensors(net) == []


def test_the_weight_check_with_a_kept_module_list_sees_tensors_assigned_after_it_was_made():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    modules = list(net.modules())  # what DivergenceGuard keeps from the epoch's start
    assert nonfinite_tensors(net, modules) == []
    net[1].running_mean = torch.full((4,), float("nan"))  # a new tensor, not an in-place change
    net[0].weight = torch.nn.Parameter(torch.full((4, 3), float("inf")))
    assert nonfinite_tensors(net, modules) == ["0.weight", "1.running_mean"]


def test_hydra_partials_of_genlab_losses_become_plain_partials_with_the_same_values():
    from hydra.utils import instantiate

    from genlab.losses import binary_cross_entropy_discriminator_loss, plain

    hydra_partial = instantiate({"_target_": "genlab.losses.binary_cross_entropy_discriminator_loss", "_partial_": True,
                                 "one_sided_label_smoothing": 0.1})
    assert type(hydra_partial) is not functools.partial  # hydra-core 1.3.8 checks its policy on every call
    loss = plain(hydra_partial)
    assert type(loss) is functools.partial and loss.func is binary_cross_entropy_discriminator_loss
    real, fake = torch.randn(8), torch.randn(8)
    assert torch.equal(loss(real, fake), hydra_partial(real, fake))
    assert loss.keywords == {"one_sided_label_smoothing": 0.1}
    # a target from outside genlab keeps Hydra's check; a plain function is returned as it is
    other = instantiate({"_target_": "torch.nn.functional.mse_loss", "_partial_": True})
    assert plain(other) is other and plain(binary_cross_entropy_discriminator_loss) is binary_cross_entropy_discriminator_loss


def test_the_nvml_cuda_check_is_turned_off_only_where_nvml_cannot_load(monkeypatch):
    import ctypes

    from genlab.speed import skip_unloadable_nvml

    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # what importing Lightning sets
    available = torch.cuda.is_available()
    skip_unloadable_nvml()
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
        expected = "1"
    except OSError:
        expected = "0"
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == expected
    assert torch.cuda.is_available() == available  # the same answer either way


class CallbackList(pl.Callback):
    names: list[str] = []

    def on_train_start(self, trainer, pl_module) -> None:
        CallbackList.names = [type(cb).__name__ for cb in trainer.callbacks]


def test_periodic_callbacks_the_model_cannot_use_are_left_out(tmp_path: Path):
    cfg = compose_config(tmp_path, [*TOY, "logger=none", "max_batches=2", f"+callbacks.probe._target_={__name__}.CallbackList"])
    train(cfg)
    names = set(CallbackList.names)
    assert {"DivergenceGuard", "SampleGrid", "RunCheckpoints", "InterpolationGrid", "CallbackList"} <= names
    # no likelihood, completion, classes, codes, chains or filters on a toy GAN
    assert not names & {"HeldOutLikelihood", "CompletionGrid", "ClassGrid", "CodeGrid", "ChainGrid", "FilterGrid", "FreeEnergy"}
