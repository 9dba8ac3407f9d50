"""The train flow behind ``train.py``: everything is instantiated from the composed Hydra config."""

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import rich
import rich.syntax
import rich.table
import rich.tree
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationKeyError
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import Logger, WandbLogger

from genlab.callbacks import SampleGrid, SampleMetrics

CONFIG_TREE_ORDER = ("data", "model", "trainer", "callbacks", "logger", "paths")
# The headline numbers printed at the end of a run; all metrics are in the loggers.
FINAL_METRICS = ("fid", "kid", "is", "pr_precision", "pr_recall", "classes_covered", "classes_kl_uniform")


def instantiate_dict(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a config group that composes several named items (callbacks, loggers)."""
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"expected a mapping of named configs with _target_, got {type(cfg).__name__}: {cfg}")
    return [hydra.utils.instantiate(item) for item in cfg.values() if item is not None and "_target_" in item]


def check_model_fits_data(cfg: DictConfig) -> None:
    """Fail before anything is built when the model's nets read a data key the chosen data does not have.

    Nets take their sizes from the data config (``${data.channels}``/``${data.image_size}`` for images,
    ``${data.dim}`` for 2-D points), so an image model on point data (or the reverse) shows up as a missing key.
    """
    try:
        OmegaConf.to_container(cfg.model, resolve=True)
    except InterpolationKeyError as err:
        key = str(err).split("'")[1] if "'" in str(err) else "?"
        if not key.startswith("data."):
            raise
        raise ValueError(
            f"{err.full_key} reads {key}, which the data config ({cfg.data.get('_target_')}) does not have: "
            f"the model's nets ({cfg.model.generator.get('_target_')}) are built for another kind of data. "
            "Image nets read data.channels and data.image_size; point nets read data.dim (data=ring8, data=grid25). "
            "Presets named after a loss (wgan, wgan_gp, lsgan, hinge_gan) fit both kinds; gan and dcgan are for "
            "images, toy_gan is for points."
        ) from err


def print_config_tree(cfg: DictConfig) -> None:
    tree = rich.tree.Tree("config", guide_style="dim")
    keys = [k for k in CONFIG_TREE_ORDER if k in cfg] + [k for k in cfg if k not in CONFIG_TREE_ORDER]
    for key in keys:
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        tree.add(f"[bold]{key}[/]").add(rich.syntax.Syntax(text, "yaml", theme="ansi_dark"))
    rich.print(tree)


def log_hyperparameters(loggers: list[Logger], cfg: DictConfig, model: pl.LightningModule) -> None:
    params = {
        "model/params/total": sum(p.numel() for p in model.parameters()),
        "model/params/trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    config = OmegaConf.to_container(cfg, resolve=True)
    for logger in loggers:
        logger.log_hyperparams(config | params)


def finish_wandb(loggers: list[Logger]) -> None:
    """Close the W&B run so the next job of a multirun starts its own instead of reusing this one."""
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        wandb.finish()


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the configured model on the configured data; return the final logged metrics."""
    check_model_fits_data(cfg)
    if cfg.get("print_config", True):
        print_config_tree(cfg)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)

    datamodule: pl.LightningDataModule = hydra.utils.instantiate(cfg.data)
    # Read the data before anything else is created: a missing dataset stops here, before a W&B run exists.
    datamodule.prepare_data()
    datamodule.setup("fit")
    model: pl.LightningModule = hydra.utils.instantiate(cfg.model)
    callbacks = instantiate_dict(cfg.get("callbacks"))
    loggers = instantiate_dict(cfg.get("logger"))
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    log_hyperparameters(loggers, cfg, model)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    finally:
        finish_wandb(loggers)
    print_outputs(Path(cfg.paths.output_dir), trainer, loggers)
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


def print_outputs(output_dir: Path, trainer: pl.Trainer, loggers: list[Logger]) -> None:
    lines = [f"run directory  {output_dir}"]
    for cb in trainer.callbacks:
        if isinstance(cb, SampleGrid) and cb.last_path is not None:
            lines.append(f"samples        {cb.dirpath}  (final grid: {cb.last_path.name})")
        if isinstance(cb, SampleMetrics) and cb.history:
            last = cb.history[-1]
            shown = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k in FINAL_METRICS)
            lines.append(f"metrics        {shown}  (after batch {last['step']}, {cb.num_samples} samples)")
        if isinstance(cb, ModelCheckpoint) and cb.dirpath:
            lines.append(f"checkpoints    {cb.dirpath}  (resume with ckpt_path={Path(cb.dirpath) / 'last.ckpt'})")
    for logger in loggers:
        if isinstance(logger, WandbLogger) and os.environ.get("WANDB_MODE") in {"offline", "dryrun"}:
            lines.append(f"wandb          offline; upload with: wandb sync {Path(logger.save_dir) / 'wandb'}/offline-run-*")
    rich.get_console().print("[bold green]done[/]\n" + "\n".join(f"  {line}" for line in lines), soft_wrap=True)


# ----------------------------------------------------------------------------------------------- evaluate / sample
class RunNotFoundError(FileNotFoundError):
    pass


def load_run(ckpt_path: str | Path, run_dir: str | Path | None = None, overrides: list[str] = ()) -> tuple[Path, Path, DictConfig]:
    """The checkpoint, its run directory and the run's composed config (``<run>/.hydra/config.yaml``), with the
    Hydra-runtime paths pinned (``paths.root_dir``: the current directory, ``paths.output_dir``: the run) so the
    config resolves outside the training process."""
    ckpt = Path(ckpt_path).expanduser()
    if not ckpt.is_file():
        hint = ""
        if ckpt.parent.is_dir():
            found = sorted(p.name for p in ckpt.parent.glob("*.ckpt"))
            hint = f" Checkpoints in {ckpt.parent}: {', '.join(found) or 'none'}."
        raise RunNotFoundError(
            f"ckpt_path={ckpt}: no such checkpoint.{hint} Runs keep theirs in outputs/runs/<run>/checkpoints/ "
            "(last.ckpt and epoch_XXX.ckpt)."
        )
    run = Path(run_dir).expanduser() if run_dir else ckpt.resolve().parent.parent
    config_file = run / ".hydra" / "config.yaml"
    if not config_file.is_file():
        raise RunNotFoundError(
            f"No run config at {config_file}. eval.py rebuilds the model and data from the run that wrote the "
            f"checkpoint: it expects <run>/checkpoints/{ckpt.name} next to <run>/.hydra/config.yaml. If the checkpoint "
            "was moved, pass run_dir=<the run directory> (the one holding .hydra/)."
        )
    cfg = OmegaConf.load(config_file)
    paths = cfg.get("paths")
    for key, value in (("root_dir", os.getcwd()), ("output_dir", str(run))):
        raw = paths._get_node(key)._value() if paths is not None and key in paths else None
        if raw is None or (isinstance(raw, str) and "${hydra:" in raw):
            OmegaConf.update(cfg, f"paths.{key}", value, force_add=True)
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    return ckpt, run, cfg


def load_model(run_cfg: DictConfig, ckpt: Path, device: torch.device) -> tuple[pl.LightningModule, dict[str, Any]]:
    """The run's model with the checkpoint's weights, in eval mode on ``device``, and the checkpoint's epoch/step."""
    model: pl.LightningModule = hydra.utils.instantiate(run_cfg.model)
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=False)
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise RuntimeError(
            f"{ckpt} does not fit the model of its run config ({run_cfg.model.get('_target_')}): {err}\n"
            "Was the checkpoint moved between runs? Pass run_dir=<the run that wrote it>."
        ) from err
    model.eval().to(device)
    return model, {"epoch": checkpoint.get("epoch"), "global_step": checkpoint.get("global_step")}


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """``eval.py``: score a checkpoint's samples with the configured metrics (``metrics=...``, default: those the run
    trained with), write ``eval.json`` and ``eval_samples.png`` next to the checkpoint, print a table."""
    from genlab.callbacks.sample_metrics import prepare_metrics, score_samples
    from genlab.images import image_grid, save_png
    from genlab.metrics import metric_entries

    if cfg.get("mode", "metrics") == "sample":
        return write_samples(cfg)
    if cfg.get("mode", "metrics") == "complete":
        return write_completions(cfg)
    if cfg.get("mode", "metrics") != "metrics":
        raise ValueError(
            f"mode={cfg.mode}: choose mode=metrics (score a checkpoint), mode=sample (write PNG files) or "
            "mode=complete (image completion grid, autoregressive models)."
        )
    start = time.perf_counter()
    ckpt, run, run_cfg = load_run(cfg.ckpt_path, cfg.get("run_dir"), cfg.get("run_overrides") or [])
    metrics_cfg, source = (cfg.metrics, "metrics=") if cfg.get("metrics") else (run_cfg.get("metrics"), "the run's config")
    if not metrics_cfg:
        raise ValueError(
            f"No metrics to compute: the run {run} was trained with metrics=none. Pick some: metrics=mnist (digits, "
            "fast on a CPU) or metrics=inception (FID/KID/IS with InceptionV3, GPU recommended)."
        )
    device = pick_device(cfg.get("device", "auto"))
    model, checkpoint_info = load_model(run_cfg, ckpt, device)
    metrics = metric_entries(hydra.utils.instantiate(metrics_cfg))
    datamodule = hydra.utils.instantiate(run_cfg.data)
    metrics = prepare_metrics(metrics, datamodule, device)
    values = score_samples(model, metrics, cfg.num_samples, cfg.batch_size, cfg.seed)

    out_dir = Path(cfg.out_dir).expanduser() if cfg.get("out_dir") else ckpt.parent
    samples = model.sample(64, generator=torch.Generator().manual_seed(cfg.seed))
    grid_path = save_png(image_grid(samples, nrow=8), out_dir / "eval_samples.png") if samples.dim() == 4 else None
    references = {name: m.reference_info for name, m in metrics.items() if getattr(m, "reference_info", None)}
    reference = max(references.values(), key=lambda info: info.get("num_samples", 0), default={})
    report = {
        "checkpoint": str(ckpt.resolve()),
        "run_dir": str(run.resolve()),
        **checkpoint_info,
        "model": run_cfg.model.get("_target_"),
        "data": run_cfg.data.get("_target_"),
        "num_samples": cfg.num_samples,
        "seed": cfg.seed,
        "device": str(device),
        "metrics": values,
        "metrics_from": source,
        "reference": {k: reference.get(k) for k in ("dataset", "num_samples", "image_shape", "extractor", "extractor_weights", "cache") if k in reference},
        "metrics_config": OmegaConf.to_container(metrics_cfg, resolve=True),
        "sample_grid": str(grid_path) if grid_path else None,
        "seconds": round(time.perf_counter() - start, 1),
        "date": datetime.now().isoformat(timespec="seconds"),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(json.dumps(report, indent=2))
    print_metrics_table(values, f"{ckpt}  ({cfg.num_samples} samples, seed {cfg.seed})")
    rich.get_console().print(f"  wrote {out_dir / 'eval.json'}" + (f" and {grid_path}" if grid_path else ""), soft_wrap=True)
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


def write_samples(cfg: DictConfig) -> dict[str, float]:
    """``eval.py mode=sample``: ``num_samples`` seeded samples as ``000000.png, 000001.png, ...`` (8-bit, grayscale
    or RGB), a folder that torch-fidelity, clean-fid or pytorch-fid read as is. Same checkpoint and seed: the same
    bytes."""
    from PIL import Image

    from genlab.metrics.extractors import to_uint8

    ckpt, run, run_cfg = load_run(cfg.ckpt_path, cfg.get("run_dir"), cfg.get("run_overrides") or [])
    out_dir = Path(cfg.out_dir).expanduser() if cfg.get("out_dir") else run / "generated" / f"{ckpt.stem}_seed{cfg.seed}"
    existing = sorted(out_dir.glob("*.png")) if out_dir.is_dir() else []
    if existing and not cfg.get("overwrite", False):
        raise FileExistsError(
            f"out_dir={out_dir} already holds {len(existing)} PNG files; an FID tool would read them together with the "
            "new ones. Pick another out_dir or pass overwrite=true to delete them first."
        )
    for path in existing:
        path.unlink()
    device = pick_device(cfg.get("device", "auto"))
    model, _ = load_model(run_cfg, ckpt, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(cfg.seed)
    start, written = time.perf_counter(), 0
    with torch.no_grad():
        while written < cfg.num_samples:
            samples = model.sample(min(cfg.batch_size, cfg.num_samples - written), generator=generator)
            if samples.dim() != 4 or samples.shape[1] not in (1, 3):
                raise ValueError(f"mode=sample writes images; this model's samples have shape {tuple(samples.shape)}.")
            for image in to_uint8(samples).permute(0, 2, 3, 1).cpu().numpy():
                Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(out_dir / f"{written:06d}.png")
                written += 1
    seconds = time.perf_counter() - start
    rich.get_console().print(
        f"[bold green]wrote {written} samples[/] to {out_dir} in {seconds:.1f} s (seed {cfg.seed})\n"
        f"  e.g. fidelity --gpu 0 --fid --input1 {out_dir} --input2 cifar10-train", soft_wrap=True
    )
    return {"num_samples": float(written), "seconds": seconds}


def write_completions(cfg: DictConfig) -> dict[str, float]:
    """``eval.py mode=complete``: seed 000's completion demo from a checkpoint. Held-out images with the first
    ``completion_fractions`` of their pixels given and the rest sampled, as one grid (``completion.png`` next to the
    checkpoint): originals, then covered and completed rows for each fraction."""
    from genlab.callbacks.periodic import held_out_images
    from genlab.completion import completion_rows
    from genlab.images import image_grid, save_png

    ckpt, run, run_cfg = load_run(cfg.ckpt_path, cfg.get("run_dir"), cfg.get("run_overrides") or [])
    model, _ = load_model(run_cfg, ckpt, pick_device(cfg.get("device", "auto")))
    datamodule = hydra.utils.instantiate(run_cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    images, labels = held_out_images(datamodule, cfg.completion_images)
    condition = labels.to(model.device) if getattr(model, "conditional", False) else None
    fractions = tuple(cfg.completion_fractions)
    rows = completion_rows(model, images.to(model.device), fractions, condition=condition, seed=cfg.seed)
    out_dir = Path(cfg.out_dir).expanduser() if cfg.get("out_dir") else ckpt.parent
    path = save_png(image_grid(rows, nrow=len(images)), out_dir / "completion.png")
    rich.get_console().print(
        f"[bold green]wrote[/] {path}: rows original, "
        + ", ".join(f"{f:.0%} given / completed" for f in fractions), soft_wrap=True
    )
    return {"num_images": float(len(images))}
