"""Sampling speed of the PixelCNN presets: the naive sampler (the whole net once per pixel) against the cached
sampler (``genlab.nets.incremental``: each layer computes only the new pixel), single-threaded, on binarised-MNIST
sizes. Also checks that both give the same samples under the same seed.

    python bench/ar_sampling.py [--models pixelcnn,gated_pixelcnn] [--sizes 28,32] [--batch 4] [--large-batch 250]

The nets are the presets' (``model=<name> data=mnist5k_binary data.image_size=<size>``) with their initial weights:
the cost of a sampler does not depend on the weights. ``--batch`` samples are drawn by both samplers (the naive one
takes about half a minute for 4 samples at 28x28), ``--large-batch`` by the cached one only (sample metrics draw
batches of 250). Prints a markdown table: wall seconds with CPU seconds in brackets.
"""

import argparse
import os
import platform
import time
from datetime import date
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from genlab.models.base import evaluating

CONF = Path(__file__).resolve().parents[1] / "conf"


def build(name: str, size: int):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["paths.root_dir=.", "paths.output_dir=/tmp/genlab_bench_ar_sampling",
                                          f"model={name}", "data=mnist5k_binary", f"data.image_size={size}"])
    torch.manual_seed(0)
    return instantiate(cfg.model)


def timed_samples(model, n: int, cached: bool, seed: int = 0) -> tuple[torch.Tensor, float, float]:
    """The sampled indices, wall seconds and CPU seconds of this process (one thread: what an idle core would take,
    also when other jobs share the machine)."""
    shape = (n, model.coding.channels, model.image_size, model.image_size)
    labels = model.sampling_labels(n, None)
    wall, cpu = time.perf_counter(), time.process_time()
    with evaluating(model):
        indices = model.fill(torch.zeros(shape, dtype=torch.long), 0, labels, torch.Generator().manual_seed(seed), cached=cached)
    return indices, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="pixelcnn,gated_pixelcnn")
    parser.add_argument("--sizes", default="28,32")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--large-batch", type=int, default=250)
    args = parser.parse_args()
    torch.set_num_threads(1)

    print(f"{date.today()}, {platform.processor() or platform.machine()} ({os.cpu_count()} cores, 1 thread used), "
          f"torch {torch.__version__}, untrained preset nets; samples/s and speed-up from CPU seconds\n")
    print("| model | image | params | samples | naive s (CPU) | naive samples/s | cached s (CPU) | cached samples/s | speed-up | same samples |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        for size in map(int, args.sizes.split(",")):
            model = build(name, size)
            params = f"{sum(p.numel() for p in model.parameters()) / 1e3:.0f} k"
            naive, naive_wall, naive_s = timed_samples(model, args.batch, cached=False)
            cached, cached_wall, cached_s = timed_samples(model, args.batch, cached=True)
            same = "yes" if torch.equal(naive, cached) else f"no ({int((naive != cached).sum())} values differ)"
            print(f"| {name} | {size}x{size} | {params} | {args.batch} | {naive_wall:.1f} ({naive_s:.1f}) | "
                  f"{args.batch / naive_s:.3f} | {cached_wall:.2f} ({cached_s:.2f}) | {args.batch / cached_s:.1f} | "
                  f"{naive_s / cached_s:.0f}x | {same} |", flush=True)
            _, large_wall, large_s = timed_samples(model, args.large_batch, cached=True)
            print(f"| {name} | {size}x{size} | {params} | {args.large_batch} | - | - | {large_wall:.1f} ({large_s:.1f}) | "
                  f"{args.large_batch / large_s:.1f} | - | - |", flush=True)


if __name__ == "__main__":
    main()
