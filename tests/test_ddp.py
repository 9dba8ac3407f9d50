"""``trainer=ddp`` as users run it: ``python train.py trainer=ddp_cpu`` starts two gloo processes (Lightning
launches the second one by re-running the script), for each training scheme: the manual-optimization GAN step, a VAE
and an autoregressive model. The processes must end with identical weights, having trained on different data with
different noise; rank 0 alone writes checkpoints and sample grids."""

import os
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from conftest import FAST, ROOT, SMALL_DCGAN, run_script, tensors
from genlab.checkpoints import load_checkpoint


class RankSnapshot(pl.Callback):
    """Test probe, added with ``+callbacks.snapshot=...``: each process saves ``rank<r>.pt`` with its final weights,
    a digest of its first training batch and the first noise its model's stream would draw."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)
        self.first_batch: torch.Tensor | None = None
        self.first_noise: torch.Tensor | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.initial = {k: v.detach().cpu().clone() for k, v in pl_module.named_parameters()}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.first_batch is None:
            self.first_batch = batch.images[:8].double().flatten(1).sum(1)
            stream = torch.Generator()
            stream.set_state(pl_module.rng.get_state())
            self.first_noise = torch.randn(4, generator=stream)

    def on_train_end(self, trainer, pl_module) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "world_size": trainer.world_size,
                "params": {k: v.detach().cpu().clone() for k, v in pl_module.named_parameters()},
                "initial": self.initial,
                "first_batch": self.first_batch,
                "first_noise": self.first_noise,
            },
            self.dirpath / f"rank{trainer.global_rank}.pt",
        )


SCHEMES = {
    "dcgan": SMALL_DCGAN,  # manual optimization: D step then G step, each net frozen in turn
    "vae": ["model.encoder.width=8", "model.importance_samples=5"],
    "pixelcnn": ["data=mnist5k_binary", "data.image_size=14", "model.net.hidden=8", "model.net.blocks=1",
                 "callbacks.completion_grid.num_images=2"],
}


def train_ddp(tmp_path: Path, model: str, *overrides: str, metrics: str = "none", trainer: str = "ddp_cpu"):
    env = os.environ | {
        "WANDB_MODE": "disabled",
        "OMP_NUM_THREADS": "1",  # two processes on a 2-core machine
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
    }
    run = tmp_path / "run"
    args = [
        f"model={model}", *SCHEMES[model], f"trainer={trainer}", *(o for o in FAST if not o.startswith("metrics=")), f"metrics={metrics}",
        "++trainer.limit_train_batches=4",
        "callbacks.sample_grid.every_n_steps=2", "data.batch_size=16", "callbacks.held_out_likelihood.max_batches=1",
        f"hydra.run.dir={run}", f"paths.root_dir={tmp_path}",
        "+callbacks.snapshot._target_=test_ddp.RankSnapshot", f"+callbacks.snapshot.dirpath={tmp_path / 'ranks'}",
        *overrides,
    ]
    result = run_script("train.py", args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [torch.load(path, weights_only=True) for path in sorted((tmp_path / "ranks").glob("rank*.pt"))]
    return run, ranks, result.stdout


def check_ranks_agree(run: Path, ranks: list[dict]) -> None:
    first, second = ranks
    assert first["world_size"] == second["world_size"] == 2
    # every parameter identical after the steps (BatchNorm running statistics are per rank, as DDP keeps them:
    # rank 0's are broadcast before each forward and checkpointed; the global ones need sync_batchnorm, GPU only)
    assert first["params"].keys() == second["params"].keys()
    for name, value in first["params"].items():
        assert torch.equal(value, second["params"][name]), f"{name} differs between ranks"
    # ... while each rank trained on its own shard of the data
    assert not torch.equal(first["first_batch"], second["first_batch"])
    # rank 0 alone wrote the checkpoint, and it holds the weights both ranks ended with
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")
    for name, value in first["params"].items():
        assert torch.equal(checkpoint["state_dict"][name], value), name
    assert sorted(p.name for p in (run / "samples").glob("step_*.png")) == ["step_000002.png", "step_000004.png"]


@pytest.mark.slow
def test_gan_under_ddp_ranks_agree_and_draw_their_own_noise(tmp_path):
    # with the default metrics on: rank 0 scores samples alone, without waiting for ranks that never compute
    run, ranks, out = train_ddp(tmp_path, "dcgan", "callbacks.sample_metrics.num_samples=100",
                                "callbacks.sample_metrics.every_n_steps=2", metrics="default")
    check_ranks_agree(run, ranks)
    assert "metrics        fid " in out
    # the module's noise stream is forked per rank: the global batch holds 2 x batch_size distinct latents
    assert not torch.equal(ranks[0]["first_noise"], ranks[1]["first_noise"])


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vae", "pixelcnn"])
def test_likelihood_models_under_ddp_ranks_agree(tmp_path, model):
    run, ranks, _ = train_ddp(tmp_path, model)
    check_ranks_agree(run, ranks)


@pytest.mark.slow
def test_two_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    """2 ranks x batch 8 end with the weights of 1 process x batch 16, for a model where that holds.

    Why it holds: the loaders shard one seeded order by rank (rank r takes every 2nd item), so the two ranks' batch k
    together are the single process's batch k; the loss is a mean over the batch and DDP averages the ranks'
    gradients, so the averaged gradient is the 16-item gradient, and Adam then takes the same step. It needs a model
    whose loss sees each item alone and draws no noise: the PixelCNN. It does not hold for BatchNorm nets (each rank
    normalises by its own 8-item statistics, sync_batchnorm is GPU-only), nor for models that draw noise in training
    (GANs, VAE: each rank draws its own). Equal up to float summation order, not bit for bit."""
    (tmp_path / "ddp").mkdir(), (tmp_path / "one").mkdir()
    _, ranks, _ = train_ddp(tmp_path / "ddp", "pixelcnn", "data.batch_size=8")
    _, single, _ = train_ddp(tmp_path / "one", "pixelcnn", "data.batch_size=16", trainer="cpu")
    assert [r["world_size"] for r in ranks] == [2, 2] and [r["world_size"] for r in single] == [1]
    initial = single[0]["initial"]
    for name, value in single[0]["params"].items():
        assert not torch.equal(value, initial[name]), f"{name} did not train"
        torch.testing.assert_close(ranks[0]["params"][name], value, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow
def test_a_ddp_run_resumed_mid_epoch_ends_bit_for_bit_like_the_uninterrupted_one(tmp_path):
    # the VAE draws posterior noise on every rank: a resume must give each rank back its own stream (rank 0's alone
    # would change rank 1's noise, the averaged gradients and so the weights)
    settings = ["trainer.max_epochs=2", "callbacks.model_checkpoint.every_n_batches=3"]
    (tmp_path / "full").mkdir(), (tmp_path / "resumed").mkdir()
    run, _, _ = train_ddp(tmp_path / "full", "vae", *settings)
    checkpoints = run / "checkpoints"
    expected, written = load_checkpoint(checkpoints / "last.ckpt"), (checkpoints / "last.ckpt").stat().st_mtime_ns
    # a resume goes on in the run it continues (its checkpoints/last.ckpt is rewritten), as train.py does after a kill
    train_ddp(tmp_path / "resumed", "vae", *settings, f"ckpt_path={checkpoints / 'batch_0000003.ckpt'}")
    assert (checkpoints / "last.ckpt").stat().st_mtime_ns != written  # the resumed run wrote its own
    got = load_checkpoint(checkpoints / "last.ckpt")
    assert expected["genlab"]["batches"] == got["genlab"]["batches"] == 8
    assert len(expected["genlab_rng_states_by_rank"]) == 2
    expected, got = tensors(expected), tensors(got)
    assert expected.keys() == got.keys()
    assert [k for k in expected if not torch.equal(expected[k], got[k])] == []
