"""2-D toy data, the mode-coverage metric, scatter plots, and a real quality check: a short GAN run covers the ring."""

import csv
import math
from pathlib import Path

import pytest
import torch
import yaml
from hydra.utils import get_class, instantiate
from PIL import Image

from conftest import CONF_DIR, FAST_TRAINER, compose_config
from genlab.callbacks.samples import scatter_plot
from genlab.data import GridDataModule, MNIST5kDataModule, RingDataModule
from genlab.data.toy import GaussianMixtureDataModule
from genlab.metrics.modes import ModeCoverage
from genlab.run import train
from genlab.schedules import linear_decay_by_batch


# --- data --------------------------------------------------------------------------------------------------------


def test_ring8_has_eight_distinct_modes_on_the_unit_circle(tmp_path: Path):
    dm = instantiate(compose_config(tmp_path, ["model=toy_gan", "data=ring8"]).data)
    assert (dm.dim, dm.num_classes, dm.std) == (2, 8, 0.01)
    assert torch.allclose(dm.centers.norm(dim=1), torch.ones(8))
    gaps = torch.cdist(dm.centers, dm.centers) + 10 * torch.eye(8)
    assert math.isclose(gaps.min().item(), 2 * math.sin(math.pi / 8), rel_tol=1e-5)  # endpoint excluded: no duplicate


def test_grid25_modes_are_the_5x5_grid_with_spacing_2(tmp_path: Path):
    dm = instantiate(compose_config(tmp_path, ["model=toy_gan", "data=grid25"]).data)
    ticks = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    assert sorted(map(tuple, dm.centers.tolist())) == sorted((x, y) for x in ticks.tolist() for y in ticks.tolist())
    assert dm.std == 0.05


def test_every_point_data_config_declares_its_kind_so_that_presets_pick_their_point_nets(tmp_path: Path):
    point_data = [p.stem for p in sorted((CONF_DIR / "data").glob("*.yaml"))
                  if issubclass(get_class(yaml.safe_load(p.read_text())["_target_"]), GaussianMixtureDataModule)]
    assert {"ring8", "grid25"} <= set(point_data)
    for data in point_data:
        cfg = compose_config(tmp_path, ["model=wgan", f"data={data}"])
        assert cfg.model.generator._target_ == "genlab.nets.ToyMLPGenerator", f"conf/data/{data}.yaml: - kind: points"
        assert "kind" not in cfg.data  # the declaration adds no datamodule argument
        assert instantiate(cfg.data).dim == 2


def test_batches_are_points_with_their_mode_index():
    dm = RingDataModule(num_points=2000, batch_size=100, seed=1)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    points, labels = batch.images, batch.labels
    assert points.shape == (100, 2) and points.dtype == torch.float32 and labels.dtype == torch.int64
    assert torch.equal(torch.cdist(points, dm.centers).argmin(1), labels)
    all_points, all_labels = dm.train_set.tensors
    assert abs((all_points - dm.centers[all_labels]).std().item() - 0.01) < 0.001
    assert len(dm.train_dataloader()) == 20


def test_toy_data_is_reproducible_from_its_seed():
    a, b, c = (GridDataModule(num_points=500, seed=s) for s in (3, 3, 4))
    for dm in (a, b, c):
        dm.setup()
    assert torch.equal(a.train_set.tensors[0], b.train_set.tensors[0])
    assert not torch.equal(a.train_set.tensors[0], c.train_set.tensors[0])


def test_toy_data_refuses_other_dimensions():
    with pytest.raises(ValueError, match="data.dim"):
        RingDataModule(dim=3)


# --- metric ------------------------------------------------------------------------------------------------------


def test_mode_coverage_on_hand_placed_points():
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    metric = ModeCoverage(centers=centers, std=1.0)
    samples = torch.tensor(
        [[0.0, 2.9], [0.5, 0.0], [1.0, 1.0],  # mode 0, all within 3 std
         [10.0, 3.1],  # nearest is mode 1 but 3.1 std away: not high quality
         [0.0, 10.0],  # mode 2
         [5.0, 5.0]]  # far from everything
    )
    metric.update(samples[:3])
    metric.update(samples[3:])  # accumulates over updates
    result = metric.compute()
    assert result["modes"] == 2
    assert torch.isclose(result["high_quality"], torch.tensor(4 / 6))
    # histogram of HQ samples over the 4 modes: [3/4, 0, 1/4, 0]; KL(p || U) = sum p log(4 p)
    expected = 0.75 * math.log(3.0) + 0.25 * math.log(1.0)
    assert torch.isclose(result["reverse_kl"], torch.tensor(expected))


def test_mode_coverage_of_real_data_is_full_and_of_a_collapsed_generator_is_one():
    dm = RingDataModule()
    metric = ModeCoverage()
    metric.prepare(dm)
    metric.update(dm.draw(2500, torch.Generator().manual_seed(0))[0])
    real = metric.compute()
    assert real["modes"] == 8 and real["reverse_kl"] < 0.01
    assert abs(real["high_quality"].item() - (1 - math.exp(-4.5))) < 0.01  # P(chi_2 <= 3): 98.9% of real points
    metric.reset()
    metric.update(dm.centers[:1].expand(100, 2))
    collapsed = metric.compute()
    assert collapsed["modes"] == 1 and torch.isclose(collapsed["reverse_kl"], torch.tensor(math.log(8)))


def test_mode_coverage_explains_misuse():
    with pytest.raises(ValueError, match="ring8"):
        ModeCoverage().prepare(MNIST5kDataModule())
    with pytest.raises(RuntimeError, match="centers"):
        ModeCoverage().update(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        ModeCoverage(centers=torch.zeros(2, 2), std=1.0).update(torch.zeros(3, 1, 4, 4))


# --- scatter plots -----------------------------------------------------------------------------------------------


def test_scatter_plot_draws_points_over_faint_modes():
    modes = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    empty = scatter_plot(torch.empty(0, 2), modes)
    drawn = scatter_plot(torch.randn(50, 2, generator=torch.Generator().manual_seed(0)) * 0.5, modes)
    assert drawn.shape == (480, 480, 3) and drawn.dtype.name == "uint8"
    assert (drawn != empty).any(axis=2).sum() > 50  # the samples changed pixels


# --- end to end --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_default_toy_preset_covers_the_ring_and_logs_modes_and_scatter_plots(tmp_path: Path):
    # toy_gan exactly as configured (loss, Adam 1e-4 / beta1 0.8, z 2-D, batch 100) except narrower nets, so that
    # a few hundred batches take seconds on a CPU.
    cfg = compose_config(
        tmp_path,
        ["model=toy_gan", "data=ring8", "metrics=modes", "logger=csv", *FAST_TRAINER, "seed=0",
         "++trainer.limit_train_batches=250", "trainer.log_every_n_steps=50",
         "model.generator.hidden=[128,128,128]", "model.discriminator.hidden=[128,128]",
         "callbacks.sample_grid.every_n_steps=125", "callbacks.sample_grid.num_samples=500",
         "callbacks.sample_metrics.every_n_steps=250", "callbacks.sample_metrics.num_samples=2500",
         "callbacks.sample_metrics.batch_size=2500"],
    )
    train(cfg)
    run = tmp_path / "run"
    with (run / "csv" / "metrics.csv").open() as f:
        (logged,) = [r for r in csv.DictReader(f) if r.get("metrics/modes")]
    assert float(logged["metrics/modes"]) >= 6
    assert 0 < float(logged["metrics/modes_high_quality"]) <= 1
    assert float(logged["metrics/modes_reverse_kl"]) < math.log(8)
    pngs = sorted((run / "samples").glob("step_*.png"))
    assert [p.name for p in pngs] == ["step_000125.png", "step_000250.png"]
    assert Image.open(pngs[-1]).size == (480, 480)


# --- the best rows of docs/toy_modes.md --------------------------------------------------------------------------


def test_linear_decay_by_batch_holds_then_falls_linearly_to_zero_and_stays_there():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    config = linear_decay_by_batch(optimizer, constant_batches=2, decay_batches=4)
    assert config["interval"] == "step"
    used = []
    for _ in range(8):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        config["scheduler"].step()
    assert used == pytest.approx([1, 1, 1, 0.75, 0.5, 0.25, 0, 0])
    with pytest.raises(ValueError, match="decay_batches >= 1"):
        linear_decay_by_batch(optimizer, constant_batches=0, decay_batches=0)


@pytest.mark.parametrize("experiment, data", [("toy_ring8", "ring8"), ("toy_grid25", "grid25")])
def test_toy_experiments_train_pacgan2_with_the_lr_decayed_to_zero_at_the_end_of_their_budget(tmp_path: Path, experiment, data):
    schedule = compose_config(tmp_path / "as_shipped", [f"experiment={experiment}"])
    budget, constant, decay = schedule.max_batches, schedule.model.scheduler.constant_batches, schedule.model.scheduler.decay_batches
    assert constant + decay == budget  # the lr reaches 0 on the budget's last batch
    # the same shape over 12 batches (as bench/toy_modes.py --steps scales it)
    constant = round(constant * 12 / budget)
    cfg = compose_config(
        tmp_path,
        [f"experiment={experiment}", "max_batches=12", f"model.scheduler.constant_batches={constant}",
         f"model.scheduler.decay_batches={12 - constant}", "logger=none", "trainer.accelerator=cpu", "print_config=false",
         "++trainer.enable_model_summary=false", "callbacks.sample_metrics.every_n_steps=12",
         "callbacks.sample_metrics.num_samples=200", "callbacks.sample_grid.every_n_steps=12"],
    )
    assert cfg.data._target_.endswith("RingDataModule" if data == "ring8" else "GridDataModule")
    assert cfg.model.discriminator.pack == 2 and cfg.data.batch_size == 8 * 100 and cfg.model.steps_per_batch == 8
    metrics = train(cfg)
    assert 0 <= metrics["metrics/modes"] <= (8 if data == "ring8" else 25)  # scored with the experiment's metric
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 2 * 8 * 12  # a D and a G step on each of a batch's 8 slices (steps_per_batch)
    # both players' last batch trained at 1/(decay batches) of the lr; the schedules sit at that batch, so a resume
    # goes on from it
    for group in (optimizer["param_groups"][0] for optimizer in state["optimizer_states"]):
        assert group["initial_lr"] == pytest.approx(1e-3) and group["lr"] == pytest.approx(1e-3 / (12 - constant))
    assert [s["last_epoch"] for s in state["lr_schedulers"]] == [11, 11]


def test_rescoring_picks_the_runs_final_checkpoint_and_refuses_an_unfinished_run(tmp_path: Path):
    import os
    import sys

    sys.path.insert(0, str(CONF_DIR.parent / "bench"))
    from toy_modes import final_checkpoint

    job = {"preset": "toy_grid25", "data": "grid25", "seed": 3, "steps": 80000, "runs": str(tmp_path)}
    checkpoints = tmp_path / "toy_grid25_grid25_3" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for age, name in enumerate(["epoch=79-step=160000-v1.ckpt", "epoch=79-step=160000.ckpt", "epoch=9-step=20000.ckpt"]):
        (checkpoints / name).touch()
        os.utime(checkpoints / name, (1e9 - age, 1e9 - age))  # the -v1 file is the newest: a rerun's
    assert final_checkpoint(job).name == "epoch=79-step=160000-v1.ckpt"
    for finished in checkpoints.glob("epoch=79*"):
        finished.unlink()
    with pytest.raises(ValueError, match="short of the run's 80000 steps"):
        final_checkpoint(job)
