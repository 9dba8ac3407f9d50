"""The train flow behind ``train.py``: everything is instantiated from the composed Hydra config."""

import os
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import rich
import rich.syntax
import rich.tree
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
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
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
