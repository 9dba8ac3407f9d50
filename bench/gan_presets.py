"""Every GAN preset, and the tricks the seeds claim help, on MNIST-5k at one batch budget, scored by ``eval.py``.

Each row is trained the way a user runs it, ``python train.py model=<preset> [overrides] max_batches=B seed=S``
(in-training metrics off, W&B off), then scored by ``python eval.py ckpt_path=<run>/checkpoints/last.ckpt
metrics=mnist num_samples=10000``: classifier FID and KID, precision/recall, digit classes covered and the KL of the
class histogram to uniform (genlab's MNIST classifier, docs/evaluation.md; not comparable with Inception numbers).
The final sample grid of each run is copied next to the table as a thumbnail.

    python bench/gan_presets.py --batches 700 --workers 2            # the committed table (CPU, one thread per run)
    python bench/gan_presets.py --rows dcgan dcgan_ema --batches 100  # a quick look

Results are appended to a JSON-lines file as runs finish (--results), so an interrupted benchmark can be reported
with --report-only.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# row -> (what it is, train.py overrides). Tricks are rows on dcgan, so each answers "does it help here".
ROWS = {
    "gan": ("MLP GAN, Goodfellow et al. 2014", ["model=gan"]),
    "dcgan": ("DCGAN, Radford et al. 2016 (the default)", ["model=dcgan"]),
    "wgan": ("WGAN, weight clipping, n_critic 5", ["model=wgan"]),
    "wgan_gp": ("WGAN-GP, n_critic 5", ["model=wgan_gp"]),
    "lsgan": ("LSGAN", ["model=lsgan"]),
    "hinge_gan": ("hinge loss", ["model=hinge_gan"]),
    "cdcgan": ("class-conditional DCGAN", ["model=cdcgan"]),
    "acgan": ("ACGAN", ["model=acgan"]),
    "projection_gan": ("projection D, conditional BN", ["model=projection_gan"]),
    "infogan": ("InfoGAN", ["model=infogan"]),
    "began": ("BEGAN", ["model=began"]),
    "dcgan_feature_matching": ("dcgan + feature matching", ["model=dcgan", "model.feature_matching=true"]),
    "dcgan_minibatch_discrimination": (
        "dcgan + minibatch discrimination (100 kernels)", ["model=dcgan", "model.discriminator.minibatch_discrimination=100"]),
    "dcgan_label_smoothing": (
        "dcgan + one-sided label smoothing 0.9", ["model=dcgan", "model.loss.discriminator.one_sided_label_smoothing=0.1"]),
    "dcgan_ema": ("dcgan + generator EMA 0.999", ["model=dcgan", "model.generator_ema=0.999"]),
    "dcgan_pack2": ("dcgan + PacGAN packing m=2", ["model=dcgan", "model.discriminator.pack=2"]),
}
SCORES = ["fid", "kid", "pr_precision", "pr_recall", "classes_covered", "classes_kl_uniform"]


def run_row(row: str, batches: int, seed: int, work: Path, images: Path) -> dict:
    """Train one row on one CPU thread, score it with eval.py, copy its final grid; return its numbers."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    run_dir = work / row
    shutil.rmtree(run_dir, ignore_errors=True)
    # ~demo: each preset as its paper sets it, not the default run's recipe (conf/demo/dcgan_mnist5k.yaml)
    train = [sys.executable, str(ROOT / "train.py"), *ROWS[row][1], "data=mnist5k", "~demo", f"max_batches={batches}",
             f"seed={seed}", "metrics=none", "logger=none", "cpu_threads=1", "print_config=false",
             f"hydra.run.dir={run_dir}", "trainer.max_epochs=1000"]
    start = time.time()
    run_checked(train, work, env)
    train_seconds = time.time() - start
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    score = [sys.executable, str(ROOT / "eval.py"), f"ckpt_path={checkpoint}", "metrics=mnist", "num_samples=10000",
             "print_config=false", f"hydra.run.dir={run_dir / 'eval'}"]
    run_checked(score, work, env)
    values = json.loads((checkpoint.parent / "eval.json").read_text())["metrics"]
    grid = max((run_dir / "samples").glob("step_*.png"))
    images.mkdir(parents=True, exist_ok=True)
    shutil.copy(grid, images / f"{row}.png")
    return {"row": row, "batches": batches, "seed": seed, "train_seconds": train_seconds,
            **{k: values[k] for k in SCORES if k in values}}


def run_checked(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[1:3])} failed (rc {done.returncode}):\n{done.stderr[-3000:]}")


def table(results: list[dict], images: Path, doc: Path) -> list[str]:
    lines = ["| row | what | FID ↓ | KID ↓ | precision | recall | classes (of 10) | class KL ↓ | train s | final grid |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in ROWS:
        found = [r for r in results if r["row"] == row]
        if not found:
            continue
        r = found[-1]
        thumb = os.path.relpath(images / f"{row}.png", doc.parent)
        lines.append(
            f"| `{row}` | {ROWS[row][0]} | {r['fid']:.2f} | {r['kid']:.3f} | {r['pr_precision']:.2f} | "
            f"{r['pr_recall']:.2f} | {r['classes_covered']:.0f} | {r['classes_kl_uniform']:.3f} | "
            f"{r['train_seconds']:.0f} | <img src=\"{thumb}\" width=\"96\"> |"
        )
    return lines


def write_doc(results: list[dict], doc: Path, images: Path, wall_minutes: float | None, workers: int) -> None:
    batches = sorted({r["batches"] for r in results})
    text = "\n".join([
        "# MNIST-5k: every GAN preset at one batch budget",
        "",
        "Generated by `bench/gan_presets.py`; the analysis below the table is written by hand.",
        "",
        f"- **Date:** {datetime.date.today().isoformat()}  **Machine:** CPU only, {os.cpu_count()} cores "
        f"({platform.machine()}), {workers} runs in parallel on one thread each",
        f"- **Budget:** {', '.join(map(str, batches))} training batches of 64 digits per run, each preset as its paper "
        "sets it (`~demo`; n_critic-5 presets make a fifth as many generator steps), seed 0."
        + (f" Benchmark wall time {wall_minutes:.0f} min." if wall_minutes is not None else ""),
        "- **Scored** by `eval.py metrics=mnist num_samples=10000` on the last checkpoint: genlab's MNIST-classifier "
        "FID/KID (not Inception: not comparable with papers' CIFAR/CelebA numbers), precision/recall (k=3), "
        "classes covered (a digit counts with >= 1 % of samples) and the class histogram's KL to uniform. The 500 "
        "held-out real digits score FID 0.32, precision/recall 0.92/0.89, 10/10 classes (docs/evaluation.md): "
        "as good as this classifier can tell.",
        "",
        *table(results, images, doc),
        "",
    ])
    marker = "<!-- analysis -->"
    analysis = doc.read_text().split(marker, 1)[1] if doc.exists() and marker in doc.read_text() else "\n"
    doc.write_text(text + marker + analysis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--batches", type=int, default=700)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/genlab_gan_presets"))
    parser.add_argument("--results", type=Path, default=ROOT / "outputs" / "gan_presets.jsonl")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "gan_presets.md")
    parser.add_argument("--images", type=Path, default=ROOT / "docs" / "images" / "gan_presets")
    parser.add_argument("--report-only", action="store_true", help="write the table from --results, train nothing")
    args = parser.parse_args()

    start = time.time()
    if not args.report_only:
        args.work.mkdir(parents=True, exist_ok=True)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(args.workers) as pool:  # each row is its own pair of processes
            jobs = [pool.submit(run_row, row, args.batches, args.seed, args.work, args.images) for row in args.rows]
            for job in jobs:
                result = job.result()
                with args.results.open("a") as f:
                    f.write(json.dumps(result) + "\n")
                print(json.dumps(result), flush=True)
    results = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
    print("\n".join(table(results, args.images, args.doc)))
    write_doc(results, args.doc, args.images, None if args.report_only else (time.time() - start) / 60, args.workers)
    print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
