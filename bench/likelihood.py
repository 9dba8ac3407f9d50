"""Held-out NLL on binarised MNIST-5k (28x28, 4500 train / 500 held out) after a fixed CPU time budget per model,
next to the published binarised-MNIST numbers, plus sampling time per image.

    python bench/likelihood.py [--minutes 6] [--models vae,gated_pixelcnn,pixelrnn,rowlstm] [--iwae-k 5000]
                               [--iwae-images 20] [--out docs/likelihood_bench.md]

Each model is the repo's config (``model=<name> data=mnist5k_binary``) with the CPU sizes below, trained by a
real Lightning Trainer with ``max_time``. NLL is exact for the autoregressive models (all 500 held-out images) and
the IWAE bound for the VAE (k = --iwae-k on the first --iwae-images held-out images, k = 1 i.e. the ELBO, on all).
Prints a markdown table and writes it to --out.
"""

import argparse
import math
import os
import platform
import time
from datetime import date
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from genlab.evaluation import held_out_nll

CONF = Path(__file__).resolve().parents[1] / "conf"

# CPU-sized versions of each config (the overrides are part of the result).
MODELS = {
    "vae": ["model.encoder.latent_dim=32", "model.encoder.width=32"],
    "gated_pixelcnn": ["model.net.hidden=32", "model.net.blocks=5"],
    "pixelcnn": ["model.net.hidden=32", "model.net.blocks=5"],
    "pixelrnn": ["model.net.hidden=128"],
    "rowlstm": ["model.net.hidden=32", "model.net.layers=2"],
}
PAPER = {
    "vae": "VAE, 1 stochastic layer: 86.76 (IWAE paper, k=5000); VAE trained with k=50: 86.35",
    "gated_pixelcnn": "PixelCNN 81.30 [R] (PixelRNN paper); Gated PixelCNN: no binarised-MNIST number",
    "pixelcnn": "PixelCNN 81.30 [R] (PixelRNN paper, Table 6)",
    "pixelrnn": "no published number (seed model); Diagonal BiLSTM 79.20 is the paper's best",
    "rowlstm": "Row LSTM 80.54 [R] (PixelRNN paper)",
}


def build(name: str, extra: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["paths.root_dir=.", "paths.output_dir=/tmp/genlab_bench_likelihood",
                                          f"model={name}", "data=mnist5k_binary", *MODELS[name], *extra])
    return cfg


def run(name: str, minutes: float, iwae_k: int, iwae_images: int, extra: list[str]) -> dict:
    cfg = build(name, extra)
    pl.seed_everything(0, workers=True)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    model = instantiate(cfg.model)
    trainer = pl.Trainer(
        max_time={"minutes": minutes}, max_epochs=-1, accelerator="cpu", logger=False, callbacks=[],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    train_s = time.perf_counter() - start
    row = {"model": name, "params": sum(p.numel() for p in model.parameters()), "steps": trainer.global_step,
           "epochs": trainer.global_step * cfg.data.batch_size / len(datamodule.train_set), "train_s": train_s}
    loader = datamodule.val_dataloader()
    start = time.perf_counter()
    if hasattr(model, "iwae_bound"):
        torch.manual_seed(0)
        row["elbo_nats"] = held_out_nll(model, loader, importance_samples=1)["val/nll_nats"]
        row["iwae100_nats"] = held_out_nll(model, loader, importance_samples=100)["val/nll_nats"]
        subset = torch.utils.data.DataLoader(
            torch.utils.data.Subset(datamodule.val_set, range(iwae_images)), batch_size=10, collate_fn=datamodule.collate
        )
        row["nll_nats"] = held_out_nll(model, subset, importance_samples=iwae_k)["val/nll_nats"]
        row["nll_note"] = (f"IWAE k={iwae_k} on the first {iwae_images} images; on all 500: k=100 "
                           f"{row['iwae100_nats']:.2f}, ELBO (k=1) {row['elbo_nats']:.2f}")
    else:
        row["nll_nats"] = held_out_nll(model, loader)["val/nll_nats"]
        row["nll_note"] = "exact, 500 images"
    row["eval_s"] = time.perf_counter() - start
    n = 2
    start = time.perf_counter()
    model.sample(n, generator=torch.Generator().manual_seed(0))
    row["sample_s_per_image"] = (time.perf_counter() - start) / n
    row["bits_per_dim"] = row["nll_nats"] / (784 * math.log(2))
    return row


def table(rows: list[dict], minutes: float) -> str:
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; date {date.today().isoformat()}; "
        f"budget {minutes:g} min of training per model, batch 64, Adam 1e-3.",
        "",
        "| model | params | steps (epochs) | held-out NLL (nats) | bits/dim | how | sampling s/image | paper (60k train, 10k test) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params'] / 1e3:.0f}k | {r['steps']} ({r['epochs']:.1f}) | {r['nll_nats']:.2f} | "
            f"{r['bits_per_dim']:.3f} | {r['nll_note']} | {r['sample_s_per_image']:.2f} | {PAPER[r['model']]} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--models", default="vae,gated_pixelcnn,pixelrnn,rowlstm")
    parser.add_argument("--iwae-k", type=int, default=5000)
    parser.add_argument("--iwae-images", type=int, default=20)
    parser.add_argument("--out", default="docs/likelihood_bench.md")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every model")
    args = parser.parse_args()
    rows = []
    for name in args.models.split(","):
        rows.append(run(name, args.minutes, args.iwae_k, args.iwae_images, args.overrides))
        print(rows[-1], flush=True)
        text = table(rows, args.minutes)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
