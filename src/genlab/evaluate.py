"""The flows behind ``eval.py``: score a checkpoint (``mode=metrics``), write its samples as PNG files
(``mode=sample``), draw completions (``mode=complete``), latent interpolations (``mode=interpolate``) or DCGAN's
vector arithmetic (``mode=arithmetic``). Each starts from the same :func:`open_run` preamble:
the run's config, the checkpoint's weights (loaded safely), the device."""

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import rich
import rich.table
import torch
from omegaconf import DictConfig, OmegaConf

from genlab.checkpoints import load_model, load_run, pick_device
from genlab.console import FILE_ONLY, report
from genlab.data.batch import conditions_for

log = logging.getLogger(__name__)

MODES = ("metrics", "sample", "complete", "interpolate", "arithmetic")


@dataclass
class OpenedRun:
    ckpt: Path
    run_dir: Path
    config: DictConfig  # the run's own composed config
    model: pl.LightningModule
    checkpoint_info: dict[str, Any]
    device: torch.device

    def datamodule(self) -> pl.LightningDataModule:
        datamodule = hydra.utils.instantiate(self.config.data)
        datamodule.prepare_data()
        datamodule.setup("fit")
        return datamodule

    def out_dir(self, cfg: DictConfig, default: Path) -> Path:
        return Path(cfg.out_dir).expanduser() if cfg.get("out_dir") else default


def locate_run(cfg: DictConfig) -> tuple[Path, Path, DictConfig]:
    return load_run(cfg.ckpt_path, cfg.get("run_dir"), cfg.get("run_overrides") or [])


def open_run(cfg: DictConfig, located: tuple[Path, Path, DictConfig] | None = None) -> OpenedRun:
    ckpt, run, run_cfg = located or locate_run(cfg)
    device = pick_device(cfg.get("device", "auto"))
    model, info = load_model(run_cfg, ckpt, device)
    return OpenedRun(ckpt, run, run_cfg, model, info, device)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """``eval.py``: dispatch on ``mode``."""
    mode = cfg.get("mode", "metrics")
    flows = {
        "metrics": score_checkpoint,
        "sample": write_samples,
        "complete": write_completions,
        "interpolate": write_interpolations,
        "arithmetic": write_arithmetic,
    }
    if mode not in flows:
        raise ValueError(
            f"mode={mode}: choose mode=metrics (score a checkpoint), mode=sample (write PNG files), "
            "mode=complete (image completion grid, autoregressive models), mode=interpolate (latent interpolation "
            "grids) or mode=arithmetic (DCGAN's vector arithmetic on concepts a - b + c)."
        )
    return flows[mode](cfg)


def score_checkpoint(cfg: DictConfig) -> dict[str, float]:
    """Score a checkpoint's samples with the configured metrics (``metrics=...``, default: those the run trained
    with), write ``eval.json`` and ``eval_samples.png`` next to the checkpoint, print a table."""
    from genlab.evaluation import prepare_metrics, score_samples
    from genlab.images import image_grid, save_png
    from genlab.metrics import metric_entries

    start = time.perf_counter()
    located = locate_run(cfg)
    run_cfg = located[2]
    metrics_cfg, source = (cfg.metrics, "metrics=") if cfg.get("metrics") else (run_cfg.get("metrics"), "the run's config")
    if not metrics_cfg:
        raise ValueError(
            f"No metrics to compute: the run {located[1]} was trained with metrics=none. Pick some: metrics=mnist "
            "(digits, fast on a CPU) or metrics=inception (FID/KID/IS with InceptionV3, GPU recommended)."
        )
    run = open_run(cfg, located)
    datamodule = hydra.utils.instantiate(run_cfg.data)
    metrics = prepare_metrics(metric_entries(hydra.utils.instantiate(metrics_cfg)), datamodule, run.device)
    values = score_samples(run.model, metrics, cfg.num_samples, cfg.batch_size, cfg.seed, datamodule)

    out_dir = run.out_dir(cfg, run.ckpt.parent)
    condition = conditions_for(run.model, datamodule, 64, cfg.seed)
    samples = run.model.sample(
        64, condition=None if condition is None else condition.to(run.device), generator=torch.Generator().manual_seed(cfg.seed)
    )
    grid_path = save_png(image_grid(samples, nrow=8), out_dir / "eval_samples.png") if samples.dim() == 4 else None
    references = {name: m.reference_info for name, m in metrics.items() if getattr(m, "reference_info", None)}
    reference = max(references.values(), key=lambda info: info.get("num_samples", 0), default={})
    eval_json = {
        "checkpoint": str(run.ckpt.resolve()),
        "run_dir": str(run.run_dir.resolve()),
        **run.checkpoint_info,
        "model": run_cfg.model.get("_target_"),
        "data": run_cfg.data.get("_target_"),
        "num_samples": cfg.num_samples,
        "seed": cfg.seed,
        "device": str(run.device),
        "metrics": values,
        "metrics_from": source,
        "reference": {k: reference.get(k) for k in ("dataset", "num_samples", "image_shape", "extractor", "extractor_weights", "cache") if k in reference},
        "metrics_config": OmegaConf.to_container(metrics_cfg, resolve=True),
        "sample_grid": str(grid_path) if grid_path else None,
        "seconds": round(time.perf_counter() - start, 1),
        "date": datetime.now().isoformat(timespec="seconds"),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(json.dumps(eval_json, indent=2))
    print_metrics_table(values, f"{run.ckpt}  ({cfg.num_samples} samples, seed {cfg.seed})")
    report("wrote", [f"  {out_dir / 'eval.json'}", *([f"  {grid_path}"] if grid_path else [])])
    return values


def print_metrics_table(values: dict[str, float], title: str) -> None:
    """One row per metric; per-class fractions (``<name>_fraction_<c>``) share one row as a histogram."""
    rows: dict[str, str] = {}
    for name, value in values.items():
        stem, _, index = name.rpartition("_fraction_")
        if stem and index.isdigit():
            key = f"{stem}_fraction"
            rows[key] = f"{rows.get(key, '')} {index}:{value:.2f}".strip()
        else:
            rows[name] = f"{value:.4g}"
    table = rich.table.Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, text in rows.items():
        table.add_row(name, text)
    console = rich.get_console()
    console.print(title, soft_wrap=True)
    console.print(table)
    log.info("%s\n%s", title, "\n".join(f"  {k}  {v}" for k, v in rows.items()), extra=FILE_ONLY)


def fid_reference_hint(run_cfg: DictConfig, out_dir: Path) -> str:
    """How to score the written PNGs against the run's own data with another FID tool."""
    target = str(run_cfg.data.get("_target_", ""))
    if target.endswith("CIFAR10DataModule"):
        return f"fidelity --gpu 0 --fid --isc --input1 {out_dir} --input2 cifar10-train"
    name = target.rsplit(".", 1)[-1].removesuffix("DataModule") or "training"
    hint = f"fidelity --gpu 0 --fid --input1 {out_dir} --input2 <a folder of real {name} images at the same size>"
    if "MNIST" in name and "Fashion" not in name:
        hint += "; for digits on a CPU: python eval.py ckpt_path=... metrics=mnist"
    return hint


def write_samples(cfg: DictConfig) -> dict[str, float]:
    """``eval.py mode=sample``: ``num_samples`` seeded samples as ``000000.png, 000001.png, ...`` (8-bit, grayscale
    or RGB), a folder that torch-fidelity, clean-fid or pytorch-fid read as is. Same checkpoint and seed: the same
    bytes."""
    from PIL import Image

    from genlab.metrics.extractors import to_uint8

    located = locate_run(cfg)
    ckpt, run_dir, run_cfg = located
    out_dir = Path(cfg.out_dir).expanduser() if cfg.get("out_dir") else run_dir / "generated" / f"{ckpt.stem}_seed{cfg.seed}"
    existing = sorted(out_dir.glob("*.png")) if out_dir.is_dir() else []
    if existing and not cfg.get("overwrite", False):
        raise FileExistsError(
            f"out_dir={out_dir} already holds {len(existing)} PNG files; an FID tool would read them together with the "
            "new ones. Pick another out_dir or pass overwrite=true to delete them first."
        )
    run = open_run(cfg, located)
    conditions = None
    if getattr(run.model, "conditioning", None) is not None:
        conditions = conditions_for(run.model, run.datamodule(), cfg.num_samples, cfg.seed)
    for path in existing:
        path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(cfg.seed)
    start, written = time.perf_counter(), 0
    with torch.no_grad():
        while written < cfg.num_samples:
            count = min(cfg.batch_size, cfg.num_samples - written)
            condition = None if conditions is None else conditions[written : written + count].to(run.device)
            samples = run.model.sample(count, condition=condition, generator=generator)
            if samples.dim() != 4 or samples.shape[1] not in (1, 3):
                raise ValueError(f"mode=sample writes images; this model's samples have shape {tuple(samples.shape)}.")
            for image in to_uint8(samples).permute(0, 2, 3, 1).cpu().numpy():
                Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(out_dir / f"{written:06d}.png")
                written += 1
    seconds = time.perf_counter() - start
    report(f"wrote {written} samples", [f"  to {out_dir} in {seconds:.1f} s (seed {cfg.seed})",
                                         f"  e.g. {fid_reference_hint(run_cfg, out_dir)}"], style="bold green")
    return {"num_samples": float(written), "seconds": seconds}


def write_completions(cfg: DictConfig) -> dict[str, float]:
    """``eval.py mode=complete``: seed 000's completion demo from a checkpoint. Held-out images with the first
    ``completion_fractions`` of their pixels given and the rest sampled, as one grid (``completion.png`` next to the
    checkpoint): originals, then covered and completed rows for each fraction."""
    from genlab.completion import completion_rows
    from genlab.evaluation import held_out_batch
    from genlab.images import image_grid, save_png

    run = open_run(cfg)
    batch = held_out_batch(run.datamodule(), cfg.completion_images).to(run.device)
    condition = batch.labels if getattr(run.model, "conditioning", None) == "labels" else None
    fractions = tuple(cfg.completion_fractions)
    rows = completion_rows(run.model, batch.images, fractions, condition=condition, seed=cfg.seed)
    path = save_png(image_grid(rows, nrow=len(batch)), run.out_dir(cfg, run.ckpt.parent) / "completion.png")
    report("wrote", [f"  {path}: rows original, " + ", ".join(f"{f:.0%} given / completed" for f in fractions)],
           style="bold green")
    return {"num_images": float(len(batch))}


def write_interpolations(cfg: DictConfig) -> dict[str, float]:
    """``eval.py mode=interpolate``: the grids of the ``interpolation`` callback from a checkpoint, one per method
    (``interpolation_linear.png``, ``interpolation_spherical.png`` next to the checkpoint, or in ``out_dir``): rows
    = pairs of seeded latents, columns = steps from one to the other. Class-conditional models keep one seeded label
    per row."""
    from genlab.callbacks.interpolation import has_latent, interpolation_images
    from genlab.images import image_grid, save_png

    run = open_run(cfg)
    if not has_latent(run.model):
        raise ValueError(
            f"mode=interpolate walks between latents: it needs a model with decode(z, labels) and latent_dim (GANs, "
            f"VAE, CVAE), but {type(run.model).__name__} has none. Use mode=sample or mode=complete for it."
        )
    spec = cfg.interpolation
    datamodule = run.datamodule() if getattr(run.model, "conditioning", None) == "labels" else None
    out_dir = run.out_dir(cfg, run.ckpt.parent)
    paths = []
    for method in spec.methods:
        images = interpolation_images(run.model, datamodule, spec.pairs, spec.steps, method, cfg.seed)
        if images.dim() != 4:
            shape = tuple(images.shape)
            raise ValueError(f"mode=interpolate draws image grids; {type(run.model).__name__} decodes to shape {shape}.")
        paths.append(save_png(image_grid(images, nrow=spec.steps), out_dir / f"interpolation_{method}.png"))
    layout = f"  rows: {spec.pairs} pairs of latents (seed {cfg.seed}), columns: {spec.steps} steps"
    report("wrote", [f"  {path}" for path in paths] + [layout], style="bold green")
    return {"num_grids": float(len(paths))}


def write_arithmetic(cfg: DictConfig) -> dict[str, float]:
    """``eval.py mode=arithmetic arithmetic.a=... arithmetic.b=... arithmetic.c=...``: DCGAN's vector arithmetic
    (Radford et al. 2016, Sec. 6.3) as ``arithmetic.png`` next to the checkpoint (or in ``out_dir``): rows a, b, c
    (the exemplars behind each concept, then their mean latent decoded) and the result mean(a) - mean(b) + mean(c)
    with its noisy neighbours. Where the exemplars come from: :mod:`genlab.arithmetic`."""
    from genlab.arithmetic import ROLES, arithmetic_rows, find_concepts
    from genlab.images import image_grid, save_png

    run = open_run(cfg)
    spec = cfg.arithmetic
    specs = {role: spec.get(role) for role in ROLES}
    concepts, source = find_concepts(run.model, run.datamodule(), specs, spec.per_concept, cfg.seed, spec.pool, cfg.batch_size)
    images, width = arithmetic_rows(run.model, concepts, spec.noise, cfg.seed)
    path = save_png(image_grid(images, nrow=width), run.out_dir(cfg, run.ckpt.parent) / "arithmetic.png")
    a, b, c = (concepts[role].name for role in ROLES)
    report("wrote", [f"  {path}", f"  rows: {a}, {b}, {c} ({spec.per_concept} exemplars each, then their mean), "
                     f"result {a} - {b} + {c}", f"  exemplars: {source}"], style="bold green")
    return {"per_concept": float(spec.per_concept)}
