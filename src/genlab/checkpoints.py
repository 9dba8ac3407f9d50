"""Opening what a training run left behind: its checkpoint (safely) and its composed config.

Checkpoints are read with ``torch.load(weights_only=True)``, always: a ``.ckpt`` is a pickle, and a full unpickle
runs whatever code the file names. Everything genlab writes (weights, optimizer states, loop counters, the
module's RNG state, callback states) is plain tensors, numbers, strings and containers, which the safe loader reads.
"""

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf


class RunNotFoundError(FileNotFoundError):
    pass


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unsafe, truncated or corrupt, or made by another model."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents, read with ``weights_only=True``; one clear error for every way that fails."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err) and "weights_only" not in str(err):
            raise CheckpointError(f"{path} is not a readable checkpoint ({err}).") from err
        raise CheckpointError(
            f"Refusing to load {path}: it holds Python objects other than tensors and plain data, and unpickling "
            "those would run code named by the file (torch.load weights_only=True refused: "
            f"{str(err).splitlines()[-1] if str(err).strip() else err}). genlab never writes such checkpoints; "
            "if you made this file yourself and trust it, re-save its state_dict with plain tensors."
        ) from err
    except (EOFError, RuntimeError, zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(
            f"{path} is truncated or corrupt ({type(err).__name__}: {err}). A run killed while saving leaves such a "
            "file; use another checkpoint of the run (checkpoints/*.ckpt) or retrain."
        ) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a Lightning checkpoint (no 'state_dict' entry).")
    return checkpoint


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
    checkpoint = load_checkpoint(ckpt)
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(
            f"{ckpt} does not fit the model of its run config ({run_cfg.model.get('_target_')}): {err}\n"
            "Was the checkpoint moved between runs? Pass run_dir=<the run that wrote it>."
        ) from err
    model.on_load_checkpoint(checkpoint)
    model.eval().to(device)
    return model, {"epoch": checkpoint.get("epoch"), "global_step": checkpoint.get("global_step")}


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
