"""Held-out NLL on binarised MNIST-5k (28x28, 4500 train / 500 held out) of runs trained to convergence, next to the
published binarised-MNIST numbers, with the sampling time per image and a sample grid of each model.

    python train.py experiment=vae_mnist5k logger=csv paths.output_dir=RUN   # and gated_pixelcnn_mnist5k, rowlstm_mnist5k
    python bench/likelihood.py RUN [RUN ...] [--iwae-k 5000] [--iwae-images 20] [--out docs/likelihood_bench.md]
                               [--grids docs/images/likelihood]

Each RUN is a train.py run directory of one of those experiments (early stopping on the held-out NLL). The score is
that of ``checkpoints/best.ckpt``, the epoch with the lowest held-out NLL: exact for the autoregressive models on all
500 held-out digits; for the VAE the IWAE bound with k = 100 on all 500 and k = 1 (the ELBO), and k = 100 against
k = --iwae-k on the first --iwae-images digits (how much the bound tightens). The training curve (epochs, best epoch,
why it stopped) comes from the run's ``csv/metrics.csv`` (logger=csv), the training wall and CPU time from
``RUN/time.txt`` (``/usr/bin/time -v`` output) when present. Sampling time: CPU seconds for 16 seeded samples on one
thread (the PixelCNNs' cached sampler), whose grid goes to --grids. Prints a markdown
table and writes it to --out.
"""

import argparse
import csv
import math
import os
import platform
import re
import time
from datetime import date
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genlab.checkpoints import load_model, load_run
from genlab.evaluation import held_out_nll
from genlab.images import image_grid, save_png

PAPER = {
    "vae": "VAE, 1 stochastic layer, IWAE k=5000: 86.76 (Burda et al. 2016, Table 1)",
    "gated_pixelcnn": "PixelCNN 81.30 (van den Oord et al. 2016a, Table 4) [R]; no Gated PixelCNN binarised-MNIST number",
    "pixelcnn": "PixelCNN 81.30 (van den Oord et al. 2016a, Table 4) [R]",
    "rowlstm": "Row LSTM 80.54 (van den Oord et al. 2016a, Table 4) [R]",
    "pixelrnn": "no published number (the seed's raster LSTM); Diagonal BiLSTM 79.20 is the paper's best",
}
SAMPLES_TIMED = 16


def training_curve(run: Path) -> list[float]:
    """The held-out NLL after each epoch, from the run's CSV log."""
    log = run / "csv" / "metrics.csv"
    if not log.is_file():
        raise FileNotFoundError(f"{log}: no CSV log; train the run with logger=csv (or logger=[wandb,csv]).")
    with open(log) as f:
        return [float(row["val/nll_nats"]) for row in csv.DictReader(f) if row.get("val/nll_nats")]


def training_time(run: Path) -> str:
    """'wall / CPU' of the training command from ``/usr/bin/time -v`` output in RUN/time.txt, or '-'."""
    path = run / "time.txt"
    if not path.is_file():
        return "-"
    text = path.read_text()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", text).group(1)
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): (\S+)", text).group(1)) for kind in ("User", "System"))
    parts = [float(p) for p in wall.split(":")]
    wall_s = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    return f"{wall_s / 60:.1f} min / {cpu / 60:.1f} min"


def stop_reason(curve: list[float], patience: int, best_epoch: int) -> str:
    if len(curve) - 1 - best_epoch >= patience:
        return f"early stopping (no gain in {patience} epochs)"
    last = ", ".join(f"{v:.1f}" for v in curve[-3:])
    trend = "still falling" if best_epoch == len(curve) - 1 else "flattening"
    return f"time budget; NLL {trend} (last epochs {last})"


def subset(datamodule, n: int) -> torch.utils.data.DataLoader:
    """The first ``n`` held-out digits."""
    return torch.utils.data.DataLoader(
        torch.utils.data.Subset(datamodule.val_set, range(n)), batch_size=10, collate_fn=datamodule.collate
    )


def score(run: Path, iwae_k: int, iwae_images: int, grids: Path) -> dict:
    ckpt, run, cfg = load_run(run / "checkpoints" / "best.ckpt")
    torch.set_num_threads(1)
    model, position = load_model(cfg, ckpt, torch.device("cpu"))
    name = OmegaConf.load(run / ".hydra" / "hydra.yaml").hydra.runtime.choices.model
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    loader = datamodule.val_dataloader()
    curve = training_curve(run)
    row = {"model": name, "params": sum(p.numel() for p in model.parameters()), "best_epoch": position["epoch"],
           "epochs": len(curve), "stopped": stop_reason(curve, cfg.callbacks.early_stopping.patience, position["epoch"]),
           "time": training_time(run)}
    if hasattr(model, "iwae_bound"):
        # k=5000 on all 500 digits would take about 10 CPU-minutes per 100 digits here: the headline is k=100 on all,
        # and the first digits show how much k=5000 tightens it
        def bound(k: int, data) -> float:
            return held_out_nll(model, data, importance_samples=k, generator=torch.Generator().manual_seed(0))["val/nll_nats"]

        first = subset(datamodule, iwae_images)
        row["nll_nats"] = bound(100, loader)
        row["how"] = (f"IWAE k=100 (a bound), all {len(loader.dataset)}; ELBO {bound(1, loader):.2f}; first {iwae_images} "
                      f"digits: k=100 {bound(100, first):.2f}, k={iwae_k} {bound(iwae_k, first):.2f}")
    else:
        row["nll_nats"] = held_out_nll(model, loader)["val/nll_nats"]
        row["how"] = "exact, 500 digits"
    row["bits_per_dim"] = row["nll_nats"] / (784 * math.log(2))
    start = time.process_time()
    samples = model.sample(SAMPLES_TIMED, generator=torch.Generator().manual_seed(0))
    row["sample_s"] = (time.process_time() - start) / SAMPLES_TIMED
    row["grid"] = save_png(image_grid(samples, nrow=8), grids / f"{name}_mnist5k.png")
    return row


def table(rows: list[dict]) -> str:
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs, no GPU, torch "
        f"{torch.__version__}; scored {date.today().isoformat()} on 1 thread. Held-out NLL of checkpoints/best.ckpt "
        "on the 500 held-out digits of MNIST-5k (4500 training digits: 7.5 % of the papers' 60k).",
        "",
        "| model | params | epochs (best / run) | stopped by | held-out NLL (nats) | bits/dim | how | training wall / CPU "
        "| sampling CPU s/image | paper (60k train, 10k test) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params'] / 1e3:.0f}k | {r['best_epoch'] + 1} / {r['epochs']} | {r['stopped']} | "
            f"{r['nll_nats']:.2f} | {r['bits_per_dim']:.3f} | {r['how']} | {r['time']} | {r['sample_s']:.3f} | "
            f"{PAPER.get(r['model'], '-')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="train.py run directories (experiment=<model>_mnist5k)")
    parser.add_argument("--iwae-k", type=int, default=5000)
    parser.add_argument("--iwae-images", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("docs/likelihood_bench.md"))
    parser.add_argument("--grids", type=Path, default=Path("docs/images/likelihood"))
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        rows.append(score(run, args.iwae_k, args.iwae_images, args.grids))
        print(rows[-1], flush=True)
    text = table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
