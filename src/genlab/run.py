"""The train flow behind ``train.py``: everything is instantiated from the composed Hydra config."""

import os
import re
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationKeyError
from pytorch_lightning.loggers import Logger, WandbLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import nn

from genlab.callbacks import SampleGrid, SampleMetrics
from genlab.callbacks.checkpointing import RunCheckpoints
from genlab.callbacks.divergence import TrainingDiverged
from genlab.callbacks.likelihood import HeldOutLikelihood
from genlab.callbacks.periodic import PeriodicCallback, batches_seen
from genlab.callbacks.stopping import StopAfterBatches
from genlab.checkpoints import GENLAB_KEY, AtomicCheckpointIO, check_fits, load_checkpoint
from genlab.console import report, show_config
from genlab.speed import apply_speed_switches, check_speed_settings, skip_unloadable_nvml
from genlab.validation import check_config_types

# Left out of the end-of-run summary (they are in the loggers): per-class histograms (``classes_fraction_<c>``),
# spreads (``kid_std``, ``is_std``) and the bookkeeping of a metric evaluation.
NOT_HEADLINE = re.compile(r"(_fraction_\d+|_acc_\d+|_std)$|^(step|epoch|seconds)$")


def instantiate_dict(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a config group that composes several named items (callbacks, loggers)."""
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"expected a mapping of named configs with _target_, got {type(cfg).__name__}: {cfg}")
    return [hydra.utils.instantiate(item) for item in cfg.values() if item is not None and "_target_" in item]


def _target_class(node: DictConfig) -> type | None:
    try:
        return hydra.utils.get_class(node.get("_target_"))
    except Exception:  # no importable _target_: instantiation reports that itself
        return None


#: fully connected models below this many parameters train faster on one CPU thread (cpu_threads=auto, conf/train.yaml)
SMALL_MODEL_PARAMETERS = 1_000_000


def set_cpu_threads(setting: int | str | None, model: pl.LightningModule) -> int:
    """``cpu_threads``: ``auto`` (one thread for small fully connected models, torch's default otherwise), a positive
    number, or ``null`` (torch's default). Returns the count before, for the caller to restore (tests and sweeps train
    several models in one process). Convolutions are left out of ``auto``'s one thread whatever their parameter count:
    the width-32 DCGAN of the default run (0.5M parameters, 500 batches of 64) took 99 s on one thread and 68 s on two
    (idle 2-core CPU)."""
    previous = torch.get_num_threads()
    if setting == "auto":
        convolutional = any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())
        if not convolutional and sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS:
            torch.set_num_threads(1)
    elif setting is not None:
        if not isinstance(setting, int) or isinstance(setting, bool) or setting < 1:
            raise ValueError(f"cpu_threads must be auto, null or a positive number of threads, got {setting!r}.")
        torch.set_num_threads(setting)
    return previous


def check_model_fits_data(cfg: DictConfig) -> None:
    """Fail before anything is built when the model has no nets for the data's kind, or its nets read a data key the
    chosen data does not have, with one message that names the presets that fit.

    Adversarial presets list one nets family per data kind they support (``- optional nets/<family>@_here_:
    ${oc.select:data/kind,images}``, explained in conf/model/base/adversarial.yaml) and Hydra's ``optional`` skips
    the families that have no file for the data's kind, so a preset without a line for that kind composes without
    nets; left alone it would fail inside instantiation with a bare missing-argument error. Nets take their sizes
    from the data config (``${data.channels}``/``${data.image_size}`` for images, ``${data.dim}`` for 2-D points), so
    nets forced onto the other kind, or point data that does not declare ``- kind: points``, show up as a missing key.
    """
    import inspect

    from hydra.core.hydra_config import HydraConfig

    # The presets with a nets line per kind; tests/test_gan_family.py composes every preset to keep this list true.
    fitting = {
        "point": "toy_gan, wgan, wgan_gp, lsgan, hinge_gan (e.g. python train.py model=toy_gan data=ring8)",
        "image": "dcgan, gan, wgan, wgan_gp, lsgan, hinge_gan, cgan, cdcgan, acgan, projection_gan, infogan, ssgan, began, progan "
        "(e.g. python train.py model=dcgan data=mnist5k)",
    }
    family = {"point": "toy_mlp", "image": "dcgan"}
    kind = "point" if "dim" in cfg.data else "image"
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    preset = f"model={choices['model']}" if choices.get("model") else "The model preset"
    where = f"conf/model/{choices['model']}.yaml" if choices.get("model") else "conf/model/<preset>.yaml"
    data = str(cfg.data.get("_target_"))
    data = f"data={choices['data']}, {data}" if choices.get("data") else data
    target = _target_class(cfg.model)
    takes = inspect.signature(target).parameters if target is not None else {}
    # a nets node without _target_ is not a net: the model/conditioning group adds num_classes to whatever nets compose
    missing = [
        f"model.{name}" for name in ("generator", "discriminator") if name in takes and "_target_" not in (cfg.model.get(name) or {})
    ]
    if missing:
        raise ValueError(
            f"{preset} has no nets for {kind} data ({data}): {where} lists no nets family for {kind}s, so "
            f"{' and '.join(missing)} {'are' if len(missing) > 1 else 'is'} missing. "
            f"Presets with nets for {kind} data: {fitting[kind]}. To give a preset {kind} nets, add "
            f"'- optional nets/{family[kind]}@_here_: ${{oc.select:data/kind,images}}' to its defaults list "
            "(conf/model/base/adversarial.yaml explains these lines)."
        )
    # Schemes whose own use of labels or codes rules out model/conditioning say why (class attribute)
    refused = getattr(_target_class(cfg.model), "refuses_label_conditioning", None)
    label_mode = OmegaConf.select(cfg, "model.discriminator.label_mode", default=None)
    if refused and (choices.get("model/conditioning", "none") != "none" or label_mode is not None):
        raise ValueError(
            f"{preset} cannot take model/conditioning={choices.get('model/conditioning', label_mode)}: {refused}. Class-conditional "
            "presets: cgan, cdcgan, acgan, projection_gan (or model=dcgan model/conditioning=concat|projection|auxiliary)."
        )
    # Class-conditional models (model/conditioning=... on a GAN: its discriminator gets a label_mode; CVAE and
    # conditional PixelCNN: model.conditional=true) need class labels, which unlabelled image data (folder, celeba,
    # pokemon: data.num_classes 0) and point data (no data.num_classes) do not have.
    gan_conditioning = OmegaConf.select(cfg, "model.discriminator.label_mode", default=None)
    conditional = gan_conditioning is not None or cfg.model.get("conditional") is True
    how = f"model/conditioning={choices.get('model/conditioning', gan_conditioning)}" if gan_conditioning else "model.conditional=true"
    no_labels = ValueError(
        f"{preset} is class-conditional ({how}) but the data ({data}) has no class labels "
        f"(data.num_classes={cfg.data.get('num_classes', 'not set')}). Pick labelled data (data=mnist5k, mnist, "
        f"fashion_mnist or cifar10), or train it unconditionally "
        f"({'model/conditioning=none' if gan_conditioning else 'model.conditional=false'}, or an unconditional preset)."
    )
    if conditional and kind == "image" and not int(cfg.data.get("num_classes") or 0) >= 2:
        raise no_labels
    try:
        OmegaConf.to_container(cfg.model, resolve=True)
    except InterpolationKeyError as err:
        key = str(err).split("'")[1] if "'" in str(err) else "?"
        if key == "data.num_classes" and gan_conditioning:  # point nets made conditional: point data has no classes
            raise no_labels from err
        if key == "data.source_channels":  # translators read the input side of translation data
            raise ValueError(
                f"{preset} translates images and reads data.source_channels, which the data ({data}) does not have: "
                "it needs translation data with source images. Unpaired: data=mnist_thin2thick, data=unpaired "
                "data.root=DIR; paired: data=mnist_edges2digits, mnist_colorize, data=paired data.root=DIR."
            ) from err
        if not key.startswith("data."):
            raise
        other = "image" if kind == "point" else "point"
        raise ValueError(
            f"{err.full_key} reads {key}, which the data config ({data}) does not have: the model is built for "
            f"{other} data. Image nets read data.channels and data.image_size; point nets read data.dim, and point "
            "data declares '- kind: points' in its defaults list (as conf/data/ring8.yaml does) so that presets pick "
            f"their point nets. Presets with nets for {kind} data: {fitting[kind]}."
        ) from err


def log_hyperparameters(loggers: list[Logger], cfg: DictConfig, model: pl.LightningModule) -> None:
    params = {
        "model/params/total": sum(p.numel() for p in model.parameters()),
        "model/params/trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    config = OmegaConf.to_container(cfg, resolve=True)
    for logger in loggers:
        logger.log_hyperparams(config | params)


def finish_wandb(loggers: list[Logger], exit_code: int = 0) -> None:
    """Close the W&B run so the next job of a multirun starts its own instead of reusing this one."""
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        wandb.finish(exit_code=exit_code)


def resume_from(ckpt_path: str) -> dict[str, Any]:
    """The resume checkpoint, read the way Lightning will read it (``weights_only=True``), or one clear error."""
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        found = sorted(p.name for p in path.parent.glob("*.ckpt")) if path.parent.is_dir() else []
        raise FileNotFoundError(
            f"ckpt_path={path}: no such checkpoint" + (f" (in that folder: {', '.join(found)})" if found else "")
            + ". Runs keep theirs in outputs/runs/<run>/checkpoints/last.ckpt."
        )
    return load_checkpoint(path)


def continue_run(cfg: DictConfig, checkpoint: dict[str, Any]) -> Path | None:
    """Point a resumed run at the run it continues: its directory (``<run>/checkpoints/<ckpt>`` next to
    ``<run>/.hydra``; checkpoints, samples and logger files go on there, this invocation's own log and config stay in
    its Hydra directory), its W&B run (the id kept in the checkpoint, ``resume="allow"``) and its CSV log (the rows
    logged before the checkpoint are kept). Returns the run."""
    ckpt = Path(cfg.ckpt_path).expanduser().resolve()
    run = ckpt.parent.parent
    if not (run / ".hydra" / "config.yaml").is_file():
        run = None
    elif Path(cfg.paths.output_dir).resolve() != run:
        started = Path(cfg.paths.output_dir)
        OmegaConf.update(cfg, "paths.output_dir", str(run))
        with open(run / "resumed.log", "a") as f:
            f.write(f"{datetime.now():%Y-%m-%d %H:%M:%S} resumed from {ckpt.name} (batch "
                    f"{(checkpoint.get(GENLAB_KEY) or {}).get('batches', '?')}); log and config: {started}\n")
    wandb_id = (checkpoint.get(GENLAB_KEY) or {}).get("wandb_run_id")
    wandb_cfg = OmegaConf.select(cfg, "logger.wandb")
    if wandb_id and wandb_cfg is not None and "wandb_logger" in str(wandb_cfg.get("_target_")) and not wandb_cfg.get("id"):
        OmegaConf.update(cfg, "logger.wandb.id", wandb_id, force_add=True)
        OmegaConf.update(cfg, "logger.wandb.resume", "allow", force_add=True)
    if run is not None and "GenlabCSVLogger" in str(OmegaConf.select(cfg, "logger.csv._target_")):
        OmegaConf.update(cfg, "logger.csv.resume", True)
    return run


def model_preset() -> str | None:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.choices.get("model") if HydraConfig.initialized() else None


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the configured model on the configured data; return the final logged metrics.

    A run stopped by SIGTERM/SIGINT saves a checkpoint (:mod:`genlab.callbacks.checkpointing`) and exits with
    ``SystemExit(128 + signal)``."""
    # the short summary (or the full config) first, so the log file has it even when the model does not fit the data
    show_config(cfg, cfg.get("print_config", True))
    check_model_fits_data(cfg)
    check_config_types(cfg)  # trainer.max_epochs=abc: the key and what it takes, before anything is built
    check_speed_settings(cfg)
    skip_unloadable_nvml()
    checkpoint, resumed_run = None, None
    if cfg.get("ckpt_path"):  # a missing, unsafe or corrupt checkpoint stops here with one message, before any work
        checkpoint = resume_from(cfg.ckpt_path)
        resumed_run = continue_run(cfg, checkpoint)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)

    datamodule: pl.LightningDataModule = hydra.utils.instantiate(cfg.data)
    # Read the data before anything else is created: a missing dataset stops here, before a W&B run exists.
    datamodule.prepare_data()
    datamodule.setup("fit")
    model: pl.LightningModule = hydra.utils.instantiate(cfg.model)
    apply_speed_switches(model, cfg.get("channels_last", False), cfg.get("compile_nets", False))
    threads_before = set_cpu_threads(cfg.get("cpu_threads", "auto"), model)
    preset = model_preset()
    if checkpoint is not None:
        this_model = f"model={preset} ({cfg.model.get('_target_')})" if preset else str(cfg.model.get("_target_"))
        check_fits(checkpoint, model, cfg.ckpt_path, this_model)
        del checkpoint  # Lightning reads it again; no second copy of the weights in memory
    callbacks = instantiate_dict(cfg.get("callbacks"))
    # The default list serves every model; a periodic callback for a capability this model lacks would do nothing
    # yet cost Lightning's hook calls (about ten per callback) every batch.
    callbacks = [cb for cb in callbacks if not isinstance(cb, PeriodicCallback) or cb.supports(model)]
    for cb in callbacks:
        if isinstance(cb, RunCheckpoints):
            cb.model_preset = preset
    # The run's checkpoints last (Lightning runs checkpoint callbacks after the others, in list order): an epoch-end
    # save then holds what best.ckpt's ModelCheckpoint recorded at that epoch's end, so a resume does not miss it.
    callbacks.sort(key=lambda cb: isinstance(cb, RunCheckpoints))
    if cfg.get("max_batches") is not None:  # a budget in batches, whatever the model (callbacks/stopping.py)
        callbacks.append(StopAfterBatches(cfg.max_batches))
    loggers = instantiate_dict(cfg.get("logger"))
    # every checkpoint written atomically (a kill mid-save leaves the previous file whole): genlab.checkpoints
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )
    log_hyperparameters(loggers, cfg, model)
    if resumed_run is not None:
        report("resuming", [f"  run directory  {resumed_run}  (checkpoints, samples and logs go on there)"], style="bold")
    exit_code = 0
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    except SIGTERMException as stop:  # genlab's Interrupted (128 + signal) or Lightning's own (SIGTERM)
        exit_code = stop.code if isinstance(stop.code, int) else 128 + signal.SIGTERM
        print_outputs(Path(cfg.paths.output_dir), trainer, loggers, stopped=exit_code)
        raise SystemExit(exit_code) from None
    except TrainingDiverged:
        exit_code = 1
        print_outputs(Path(cfg.paths.output_dir), trainer, loggers, stopped=exit_code)
        raise
    except BaseException:
        exit_code = 1
        raise
    finally:
        finish_wandb(loggers, exit_code)
        torch.set_num_threads(threads_before)
    print_outputs(Path(cfg.paths.output_dir), trainer, loggers)
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


def headline(values: dict[str, float]) -> str:
    """Every logged value of one metric evaluation except histograms and spreads (:data:`NOT_HEADLINE`)."""
    return ", ".join(f"{k} {v:.4g}" for k, v in values.items() if not NOT_HEADLINE.search(k))


def print_outputs(output_dir: Path, trainer: pl.Trainer, loggers: list[Logger], stopped: int = 0) -> None:
    """The "done" block (or "stopped", for a run that ended with exit status ``stopped``): where everything went, how
    long it trained, the last metric values, how to resume."""
    if not trainer.is_global_zero:  # DDP: the other processes wrote nothing of their own to report
        return
    lines = [f"run directory  {output_dir}"]
    batches, steps = batches_seen(trainer), trainer.global_step
    # Under manual optimization (GANs) Lightning's global_step, which trainer.max_steps limits, counts optimizer steps.
    lines.append(f"trained        {batches} batches" + (f" ({steps} optimizer steps)" if steps != batches else ""))
    for cb in trainer.callbacks:
        if isinstance(cb, SampleGrid) and cb.last_path is not None:
            lines.append(f"samples        {cb.dirpath}  (final grid: {cb.last_path.name})")
        if isinstance(cb, SampleMetrics) and cb.history:
            last = cb.history[-1]
            lines.append(f"metrics        {headline(last)}  (after batch {last['step']}, {cb.num_samples} samples)")
        if isinstance(cb, HeldOutLikelihood) and cb.history:
            last = cb.history[-1]
            lines.append(f"likelihood     {headline(last)}  (held out, after epoch {last['epoch'] + 1})")
        if isinstance(cb, RunCheckpoints) and (cb.dirpath / "last.ckpt").is_file():
            at = f", batch {cb.last_saved_batch}" if cb.last_saved_batch is not None else ""
            lines.append(f"checkpoints    {cb.dirpath}  (resume with ckpt_path={cb.dirpath / 'last.ckpt'}{at})")
    for logger in loggers:
        if isinstance(logger, WandbLogger) and os.environ.get("WANDB_MODE") in {"offline", "dryrun"}:
            lines.append(f"wandb          offline; upload with: wandb sync {Path(logger.save_dir) / 'wandb'}/offline-run-*")
    if stopped:
        report(f"stopped (exit status {stopped})", [f"  {line}" for line in lines], style="bold yellow")
        return
    report("done", [f"  {line}" for line in lines], style="bold green")
