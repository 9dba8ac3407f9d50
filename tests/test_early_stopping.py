"""``callbacks=early_stopping``: the validation loop logs the held-out NLL, EarlyStopping ends a run whose NLL stops
improving, ``best.ckpt`` holds the best epoch, a resume is still exact, and the converged-run experiments compose."""

import csv
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from conftest import compose_config, tensors
from genlab.checkpoints import load_checkpoint
from genlab.evaluation import held_out_nll
from genlab.run import train

# 14x14 digits, 3 batches of 64 an epoch, the whole 500-digit held-out split validated after each epoch
TINY = {
    "pixelcnn": ["model=pixelcnn", "model.net.hidden=8", "model.net.blocks=1", "model.net.kernel_size=3"],
    "vae": ["model=vae", "model.encoder.width=8", "model.encoder.latent_dim=4", "model.importance_samples=2"],
}
RUN = ["data=mnist5k_binary", "data.image_size=14", "callbacks=early_stopping", "++trainer.limit_train_batches=3",
       "trainer.accelerator=cpu", "++trainer.enable_model_summary=false", "print_config=false", "metrics=none",
       "callbacks.sample_grid.every_n_steps=null", "~callbacks.rich_progress_bar", "~callbacks.completion_grid",
       "~callbacks.reconstruction_grid", "~callbacks.latent_traversal", "~callbacks.interpolation"]


def fit(tmp_path: Path, *overrides: str) -> Path:
    """Train with the CSV logger; the run directory."""
    train(compose_config(tmp_path, [*RUN, "logger=csv", *overrides]))
    return tmp_path / "run"


def logged_val_nll(run: Path) -> list[float]:
    with open(run / "csv" / "metrics.csv") as f:
        return [float(row["val/nll_nats"]) for row in csv.DictReader(f) if row.get("val/nll_nats")]


@pytest.mark.parametrize("patience", [1, 2])
def test_a_run_whose_held_out_nll_stops_improving_stops_after_patience_epochs(tmp_path: Path, patience: int):
    # lr 0: the weights and so the NLL never change; epoch 0 sets the best, each later one is a non-improvement
    run = fit(tmp_path, *TINY["pixelcnn"], "model.optimizer.lr=0", "trainer.max_epochs=10",
              f"callbacks.early_stopping.patience={patience}")
    epochs = patience + 1
    assert len(logged_val_nll(run)) == epochs
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["genlab"]["batches"] == 3 * epochs


def test_a_run_that_keeps_improving_trains_to_max_epochs(tmp_path: Path):
    run = fit(tmp_path, *TINY["pixelcnn"], "model.optimizer.lr=3e-3", "trainer.max_epochs=3",
              "callbacks.early_stopping.patience=1")
    nll = logged_val_nll(run)
    assert len(nll) == 3 and nll[0] > nll[1] > nll[2]


@pytest.mark.parametrize("model", ["pixelcnn", "vae"])
def test_best_checkpoint_holds_the_epoch_with_the_lowest_logged_held_out_nll(tmp_path: Path, model: str):
    # lr 3e-2 on a tiny net: the held-out NLL falls, then jumps about, so the best epoch is rarely the last
    run = fit(tmp_path, *TINY[model], "model.optimizer.lr=3e-2", "trainer.max_epochs=5",
              "callbacks.early_stopping.patience=5")
    logged = logged_val_nll(run)
    assert len(logged) == 5
    best = load_checkpoint(run / "checkpoints" / "best.ckpt")
    assert best["epoch"] == logged.index(min(logged))
    # its weights score the minimum again (the VAE's validation draws the same importance samples every epoch)
    cfg = compose_config(tmp_path, [*RUN, *TINY[model]])
    module = instantiate(cfg.model)
    module.load_state_dict(best["state_dict"])
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    if model == "vae":
        module._validation_noise.manual_seed(0)
        rescored = held_out_nll(module, datamodule.val_dataloader(), generator=module._validation_noise)
    else:
        rescored = held_out_nll(module, datamodule.val_dataloader())
    assert rescored["val/nll_nats"] == pytest.approx(min(logged), rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "model, stop_after",
    [("pixelcnn", 4), ("vae", 4), ("vae", 3)],
    ids=["pixelcnn_mid_epoch", "vae_mid_epoch", "vae_epoch_end"],
)
def test_a_resumed_run_with_early_stopping_ends_bit_for_bit_like_the_uninterrupted_one(tmp_path: Path, model: str, stop_after: int):
    # patience 1, gains under 3 nats not counted: the run stops early, so the early-stopping state decides where both runs end.
    settings = [*RUN, *TINY[model], "model.optimizer.lr=3e-2", "trainer.max_epochs=6", "callbacks.early_stopping.patience=1",
                "callbacks.early_stopping.min_delta=3",
                "logger=none"]
    train(compose_config(tmp_path / "full", settings))
    # a run killed after batch `stop_after`, resumed in its own run directory as train.py does
    train(compose_config(tmp_path / "part", [*settings, f"max_batches={stop_after}"]))
    train(compose_config(tmp_path / "part", [*settings, f"ckpt_path={tmp_path / 'part' / 'run' / 'checkpoints' / 'last.ckpt'}"]))
    expected = load_checkpoint(tmp_path / "full" / "run" / "checkpoints" / "last.ckpt")
    got = load_checkpoint(tmp_path / "part" / "run" / "checkpoints" / "last.ckpt")
    assert got["genlab"]["batches"] == expected["genlab"]["batches"] < 6 * 3  # stopped early, at the same batch
    # the best checkpoint's path is a key of ModelCheckpoint's state: compare the runs relative to their directories
    # (ModelCheckpoint's current_score is the score of its last improvement in this process, not training state)
    expected_tensors = {k.replace(str(tmp_path / "full"), "RUN"): v for k, v in tensors(expected).items() if "current_score" not in k}
    got_tensors = {k.replace(str(tmp_path / "part"), "RUN"): v for k, v in tensors(got).items() if "current_score" not in k}
    assert expected_tensors.keys() == got_tensors.keys()
    assert [k for k in expected_tensors if not torch.equal(expected_tensors[k], got_tensors[k])] == []
    assert any("best_model_score" in k for k in expected_tensors) and any("EarlyStopping" in k for k in expected_tensors)


@pytest.mark.parametrize(
    "experiment, net",
    [("vae_mnist5k", None), ("gated_pixelcnn_mnist5k", "genlab.nets.PixelCNN"), ("rowlstm_mnist5k", "genlab.nets.RowLSTM")],
)
def test_converged_run_experiments_compose_with_early_stopping_on_the_held_out_nll(tmp_path: Path, experiment: str, net):
    cfg = compose_config(tmp_path, [f"experiment={experiment}"])
    assert cfg.data._target_.endswith("BinaryMNIST5kDataModule")
    assert (cfg.model.net._target_ if net else cfg.model._target_) == (net or "genlab.models.VariationalModule")
    assert cfg.trainer.limit_val_batches == 1.0 and cfg.trainer.max_epochs >= 100
    assert cfg.callbacks.held_out_likelihood is None  # the validation loop logs val/nll_nats instead
    stopper, best = instantiate(cfg.callbacks.early_stopping), instantiate(cfg.callbacks.best_checkpoint)
    assert isinstance(stopper, EarlyStopping) and isinstance(best, ModelCheckpoint)
    assert (stopper.monitor, stopper.mode, best.monitor, best.mode) == ("val/nll_nats", "min", "val/nll_nats", "min")
