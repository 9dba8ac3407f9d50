"""Opening what a training run left behind: its checkpoint (safely) and its composed config.

Checkpoints are read with ``torch.load(weights_only=True)``, always: a ``.ckpt`` is a pickle, and a full unpickle
runs whatever code the file names. Everything genlab writes (weights, optimizer states, loop counters, the
module's RNG state, callback states) is plain tensors, numbers, strings and containers, which the safe loader reads.

Writing is atomic (:class:`AtomicCheckpointIO`, :func:`atomic_copy`): a file is written under a temporary name in
its directory and renamed over the target, so a run killed mid-save (SIGKILL, power loss) leaves the previous file
whole instead of a truncated one.
"""

import os
import pickle
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import hydra
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

#: checkpoint key of what genlab adds: which model wrote it, the W&B run id (genlab.callbacks.checkpointing)
GENLAB_KEY = "genlab"


class RunNotFoundError(FileNotFoundError):
    pass


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unsafe, truncated or corrupt, or made by another model."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path next to ``path`` to write to; renamed over ``path`` (``os.replace``, atomic on POSIX) when
    the block ends without an error, deleted otherwise. fsync before the rename: the data is on disk when the name
    points at it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make checkpoints private, unlike every other output
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_copy(source: str | Path, target: str | Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer with :func:`atomic_path` for local files (remote URLs: Lightning's own)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if "://" in str(path) or storage_options is not None:
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


def per_rank(trainer: pl.Trainer, state: torch.Tensor) -> torch.Tensor | None:
    """(world size, *state.shape): every DDP process's ``state`` (a random stream's), gathered on all of them, for a
    checkpoint that resumes each rank exactly; ``None`` with one process. A collective, like the checkpoint save that
    calls it: every rank calls it at the same point."""
    if trainer.world_size == 1:
        return None
    return trainer.strategy.all_gather(state.to(trainer.strategy.root_device)).cpu()


def own_rank(by_rank: torch.Tensor | None, trainer: pl.Trainer | None) -> torch.Tensor | None:
    """This process's row of a :func:`per_rank` tensor, or ``None`` when there is none for it (no per-rank states, no
    trainer, or a resume with another number of processes)."""
    if by_rank is None or trainer is None or len(by_rank) != trainer.world_size:
        return None
    return by_rank[trainer.global_rank].clone()  # a row view: Generator.set_state reads its storage from 0


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents, read with ``weights_only=True``; one clear error for every way that fails."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): not a genlab checkpoint, or one whose save never finished.")
    if path.is_file() and not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a cut one has no directory
        raise CheckpointError(
            f"{path} is not a genlab checkpoint, or it is truncated or corrupt (not a complete torch zip archive). Use "
            "another checkpoint of the run (checkpoints/*.ckpt) or retrain."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err) and "weights_only" not in str(err):
            raise CheckpointError(
                f"{path} is not a genlab checkpoint, or it is truncated or corrupt ({err}). Use another checkpoint of "
                "the run (checkpoints/*.ckpt) or retrain."
            ) from err
        raise CheckpointError(
            f"Refusing to load {path}: it holds Python objects other than tensors and plain data, and unpickling "
            "those would run code named by the file (torch.load weights_only=True refused: "
            f"{str(err).splitlines()[-1] if str(err).strip() else err}). genlab never writes such checkpoints; "
            "if you made this file yourself and trust it, re-save its state_dict with plain tensors."
        ) from err
    except (EOFError, RuntimeError, zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(
            f"{path} is not a genlab checkpoint, or it is truncated or corrupt ({type(err).__name__}: {err}). Use "
            "another checkpoint of the run (checkpoints/*.ckpt) or retrain."
        ) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a genlab checkpoint (no 'state_dict' entry).")
    return checkpoint


def written_by(checkpoint: dict[str, Any]) -> str:
    """Which model wrote ``checkpoint``, as a user would name it: ``model=vae (genlab.models.vae.VAE)``."""
    info = checkpoint.get(GENLAB_KEY) or {}
    preset, model = info.get("model_preset"), info.get("model_class")
    if not model:
        return "an unknown model (the checkpoint does not say)"
    return f"model={preset} ({model})" if preset else model


def check_fits(checkpoint: dict[str, Any], model: torch.nn.Module, path: str | Path, this_model: str) -> None:
    """Fail with which model wrote ``checkpoint`` when its weights do not fit ``model`` (names or shapes)."""
    own = model.state_dict()
    theirs = checkpoint["state_dict"]
    missing = sorted(set(own) - set(theirs))
    unexpected = sorted(set(theirs) - set(own))
    reshaped = sorted(k for k in set(own) & set(theirs) if tuple(own[k].shape) != tuple(theirs[k].shape))
    if not (missing or unexpected or reshaped):
        return
    parts = [f"{len(v)} {what} (e.g. {', '.join(v[:2])})" for what, v in (("missing", missing), ("unexpected", unexpected), ("with other shapes", reshaped)) if v]
    raise CheckpointError(
        f"{path} was written by {written_by(checkpoint)}, and its weights do not fit {this_model}: "
        f"{'; '.join(parts)}. Resume with the model and sizes it was trained with, or start a new run without ckpt_path."
    )


def check_finite(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Refuse weights with NaN/inf (a diverged run): sampling them gives black images, metrics fail opaquely."""
    bad = [k for k, v in checkpoint["state_dict"].items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(
            f"{path} holds non-finite weights ({len(bad)} tensors, e.g. {', '.join(bad[:3])}): the run diverged "
            "before this save. Use an earlier checkpoint of the run (checkpoints/batch_*.ckpt) or retrain with a lower "
            "learning rate."
        )


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
            "(last.ckpt and batch_XXXXXXX.ckpt)."
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
    check_finite(checkpoint, ckpt)
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(
            f"{ckpt} does not fit the model of its run config ({run_cfg.model.get('_target_')}); it was written by "
            f"{written_by(checkpoint)}: {err}\nWas the checkpoint moved between runs? Pass run_dir=<the run that wrote it>."
        ) from err
    model.on_load_checkpoint(checkpoint)
    model.eval().to(device)
    return model, {"epoch": checkpoint.get("epoch"), "global_step": checkpoint.get("global_step")}


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
