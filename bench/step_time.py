"""Step time of the default model (DCGAN on MNIST-5k, 32x32, batch 64): genlab's AdversarialModule under a real
Lightning Trainer vs a plain PyTorch loop doing the same work on the same nets and batches.

    python bench/step_time.py [--steps 60] [--warmup 10] [--device cpu|cuda]

Prints one table row per path; the difference is the framework's overhead per batch (one D step + one G step).
"""

import argparse
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from genlab import losses

CONF = Path(__file__).resolve().parents[1] / "conf"


def build(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["paths.root_dir=.", "paths.output_dir=/tmp/genlab_bench", *overrides])
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    return cfg, datamodule


class Timer(pl.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.start, self.batches = warmup, 0.0, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.batches = batch_idx + 1 - self.warmup


def lightning_step_time(cfg, datamodule, steps: int, warmup: int, device: str) -> float:
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    timer = Timer(warmup)
    trainer = pl.Trainer(
        accelerator=device, devices=1, max_epochs=1, limit_train_batches=steps + warmup, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
        limit_val_batches=0, num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=datamodule)
    return (time.perf_counter() - timer.start) / timer.batches


def plain_step_time(cfg, datamodule, steps: int, warmup: int, device: str) -> float:
    torch.manual_seed(0)
    model = instantiate(cfg.model).to(device)
    G, D = model.generator, model.discriminator
    d_opt, g_opt = cfg.model.optimizer.discriminator, cfg.model.optimizer.generator
    d_opt = torch.optim.Adam(D.parameters(), lr=d_opt.lr, betas=tuple(d_opt.betas))
    g_opt = torch.optim.Adam(G.parameters(), lr=g_opt.lr, betas=tuple(g_opt.betas))
    start = 0.0
    for i, batch in enumerate(datamodule.train_dataloader()):
        real = batch.images
        if i == warmup:
            start = time.perf_counter()
        if i == warmup + steps:
            break
        real = real.to(device)
        with torch.no_grad():
            fake = G(torch.randn(real.shape[0], G.latent_dim, device=device))
        d_loss = losses.binary_cross_entropy_discriminator_loss(D(real), D(fake))
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        for p in D.parameters():  # what toggle_optimizer does for the G step
            p.requires_grad_(False)
        g_loss = losses.non_saturating_generator_loss(D(G(torch.randn(real.shape[0], G.latent_dim, device=device))))
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        for p in D.parameters():
            p.requires_grad_(True)
        if device == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="alternate the two paths this often; report medians")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=gan data.batch_size=128")
    args = parser.parse_args()
    cfg, datamodule = build(args.overrides)
    # Alternating the paths spreads any background load evenly over both.
    plain, lightning = [], []
    for _ in range(args.repeats):
        plain.append(plain_step_time(cfg, datamodule, args.steps, args.warmup, args.device))
        lightning.append(lightning_step_time(cfg, datamodule, args.steps, args.warmup, args.device))
    plain, lightning = statistics.median(plain), statistics.median(lightning)
    hardware = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"\nstep time, {cfg.model.generator._target_.rsplit('.', 1)[-1]} on {cfg.data._target_.rsplit('.', 1)[-1]}, "
          f"batch {cfg.data.batch_size}, {cfg.data.image_size}px, median of {args.repeats} x {args.steps} steps after {args.warmup} warm-up; "
          f"{hardware}; torch {torch.__version__}; {date.today()}")
    print(f"| path                     | ms / batch (D+G step) |\n|--------------------------|----------------------:|")
    print(f"| plain PyTorch loop       | {plain * 1e3:21.1f} |")
    print(f"| genlab AdversarialModule | {lightning * 1e3:21.1f} |")
    print(f"overhead: {100 * (lightning / plain - 1):+.1f}%")


if __name__ == "__main__":
    main()
