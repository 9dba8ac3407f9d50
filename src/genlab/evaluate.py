"""The flows behind ``eval.py``: score a checkpoint (``mode=metrics``), write its samples as PNG files
(``mode=sample``), draw completions (``mode=complete``), latent interpolations (``mode=interpolate``), DCGAN's
vector arithmetic (``mode=arithmetic``) or translate a folder of images with a translator (``mode=translate``). Each starts from the same :func:`open_run` preamble:
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

MODES = ("metrics", "sample", "complete", "interpolate", "arithmetic", "translate")


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
        "translate": write_translations,
    }
    if mode not in flows:
        raise ValueError(
            f"mode={mode}: choose mode=metrics (score a checkpoint), mode=sample (write PNG files), "
            "mode=complete (image completion grid, autoregressive models), mode=interpolate (latent interpolation "
            "grids), mode=arithmetic (DCGAN's vector arithmetic on concepts a - b + c) or mode=translate (translate "
            "a folder of images with pix2pix, CycleGAN, ...)."
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
    # as in training: a group that skips what the data cannot feed (default, translation) skips here too
    on_unsupported = metrics_cfg.get("on_unsupported_data", "error")
    metrics = prepare_metrics(metric_entries(hydra.utils.instantiate(metrics_cfg)), datamodule, run.device, on_unsupported)
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


def write_translations(cfg: DictConfig) -> dict[str, float]:
    """``eval.py mode=translate ckpt_path=... input_dir=DIR [out_dir=DIR]``: every image under ``input_dir``
    translated by a translator (``conditioning == "source"``: pix2pix, CycleGAN, ...), written as PNGs with the same
    names (and subfolders) in ``out_dir`` (default ``<run>/translated/<ckpt>_<input folder>/``). A multi-domain
    translator (StarGAN) translates each image into every domain named by ``target`` (``target=[thick,inverted]``;
    ``all`` or null: every domain) and writes ``out_dir/to_<domain>/<same name>.png``: one folder per target, which
    FID tools read as is.

    Each image goes through the run's own test-time view, as the held-out sources did in training: converted to
    the source mode (grey or RGB, from RGBA, palette, 16-bit, ...) and resized to ``data.image_size`` (the data's
    ``keep_aspect`` / ``center_crop`` settings included), so outputs are ``image_size`` square, as the official
    ``test.py`` writes them. Files that are not images (by extension) or do not decode are skipped and listed."""
    from PIL import Image, UnidentifiedImageError

    from genlab.data.folder import IMAGE_EXTENSIONS
    from genlab.data.translation.images import mode_for
    from genlab.metrics.extractors import to_uint8

    if not cfg.get("input_dir"):
        raise ValueError("mode=translate needs input_dir=DIR, a folder of source images (e.g. datasets/horse2zebra/testA).")
    input_dir = Path(cfg.input_dir).expanduser()
    if not input_dir.is_dir():
        raise FileNotFoundError(f"input_dir={input_dir}: no such folder. Point input_dir at a folder of source images.")
    located = locate_run(cfg)
    ckpt, run_dir, run_cfg = located
    datamodule = hydra.utils.instantiate(run_cfg.data)  # reads no data: only its test-time transform and channels
    transform, source_channels = getattr(datamodule, "transform", None), getattr(datamodule, "source_channels", None)
    if transform is None or source_channels is None:
        raise ValueError(
            f"mode=translate reads images the way the run's translation data does, but its data "
            f"({run_cfg.data.get('_target_')}) has no test-time transform / source_channels: it is no translation data."
        )
    files = sorted(p for p in input_dir.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(input_dir).parts))
    skipped = [(p, "not an image file") for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]
    candidates = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    targets: dict[Path, Path] = {}
    for path in candidates:
        name = path.relative_to(input_dir).with_suffix(".png")
        if name in targets:
            raise ValueError(f"input_dir={input_dir}: {targets[name]} and {path} would both be written as {name}; rename one.")
        targets[name] = path
    if not candidates:
        raise FileNotFoundError(
            f"input_dir={input_dir} holds no images ({', '.join(IMAGE_EXTENSIONS)})"
            + (f"; {len(skipped)} other files, e.g. {skipped[0][0].name}" if skipped else ", it is empty") + "."
        )
    run = open_run(cfg, located)
    conditioning = getattr(run.model, "conditioning", None)
    if conditioning not in ("source", "domain_transfer"):
        raise ValueError(
            f"mode=translate needs a translator (a model conditioned on source images: pix2pix, cyclegan, stargan, ...), "
            f"but {type(run.model).__name__} is conditioned on {conditioning}; use mode=sample."
        )
    target_names = translation_targets(run.model, cfg.get("target"))
    out_dir = Path(cfg.out_dir).expanduser() if cfg.get("out_dir") else run_dir / "translated" / f"{ckpt.stem}_{input_dir.name}"
    mode, draw = mode_for(source_channels), transform.draw(False)

    def load(path: Path):
        try:
            with Image.open(path) as image:
                image.load()
                return transform.apply(image, mode, draw)
        except (UnidentifiedImageError, OSError) as err:
            skipped.append((path, f"does not decode ({err})"))
            return None

    start, written, items = time.perf_counter(), 0, list(targets.items())
    with torch.no_grad():
        for first in range(0, len(items), cfg.batch_size):
            loaded = [(name, load(path)) for name, path in items[first : first + cfg.batch_size]]
            loaded = [(name, x) for name, x in loaded if x is not None]
            if not loaded:
                continue
            sources = torch.stack([x for _, x in loaded]).to(run.device)
            for folder, condition in translation_conditions(run.model, sources, target_names).items():
                translated = to_uint8(run.model.sample(len(sources), condition=condition)).permute(0, 2, 3, 1).cpu().numpy()
                for (name, _), image in zip(loaded, translated):
                    path = out_dir / folder / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
                    written += 1
    if written == 0:
        raise ValueError(f"input_dir={input_dir}: none of its {len(candidates)} image files decode (e.g. {skipped[-1][0].name}).")
    seconds = time.perf_counter() - start
    lines = [f"  to {out_dir} in {seconds:.1f} s ({run_cfg.data.image_size} px, as the run trained)"]
    if target_names:
        lines.append(f"  one folder per target domain: {', '.join(f'to_{name}/' for name in target_names)}")
    if skipped:
        lines.append(f"  skipped {len(skipped)} files: " + ", ".join(f"{p.relative_to(input_dir)} ({why})" for p, why in skipped[:5])
                     + (", ..." if len(skipped) > 5 else ""))
    report(f"wrote {written} translations", lines, style="bold green")
    return {"num_images": float(written), "skipped": float(len(skipped)), "seconds": seconds}


def translation_targets(model, target) -> list[str]:
    """The domain names ``target=`` asks a multi-domain translator for (``all`` or null: every domain; one name or a
    list); ``[]`` for a one-way translator, which refuses a ``target``."""
    if getattr(model, "conditioning", None) != "domain_transfer":
        if target is not None:
            raise ValueError(
                f"target={target}: {type(model).__name__} translates one way (source -> target); target= picks the "
                "domains of a multi-domain translator (model=stargan). Drop it."
            )
        return []
    if target is None or target == "all":
        return model.domain_labels
    return model.check_domain_names([target] if isinstance(target, (str, int)) else list(target))


def translation_conditions(model, sources: torch.Tensor, target_names: list[str]) -> dict[str, object]:
    """``{output subfolder: condition for sample()}``: the sources themselves for a one-way translator (written
    in ``out_dir`` itself), one :class:`~genlab.data.batch.DomainTransfer` per target domain (``to_<name>/``)."""
    from genlab.data.batch import DomainTransfer

    if not target_names:
        return {"": sources}
    targets = model.targets_named(target_names, sources)
    return {f"to_{name}": DomainTransfer(sources, target) for name, target in targets.items()}
