"""Turning sample batches into pictures and sending them to every logger that can show one."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pytorch_lightning.loggers import Logger, TensorBoardLogger, WandbLogger
from torchvision.utils import make_grid


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """Images in [-1, 1] (N, C, H, W) -> one uint8 HWC RGB grid.

    uint8 HWC is what ``wandb.Image`` needs (it does no scaling: floats in [0, 1] log as black) and what PIL saves.
    """
    grid = make_grid(images.detach().float().cpu().clamp(-1, 1), nrow=nrow, padding=padding, value_range=(-1, 1), normalize=True)
    return (grid.mul(255).round().to(torch.uint8).permute(1, 2, 0)).numpy()


def save_png(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def save_gif(frames: list[np.ndarray], path: Path, duration_ms: int = 200) -> Path:
    """Animated GIF of equally sized uint8 HWC frames; the last frame is held a little longer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    durations = [duration_ms] * (len(images) - 1) + [duration_ms * 5]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


def log_image(loggers: list[Logger], key: str, array: np.ndarray, step: int, caption: str | None = None) -> None:
    """Send one uint8 HWC image to each logger that has an image API (CSV has none; its PNG is on disk)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            # WandbLogger.log_image takes len() of every extra kwarg: pass caption only when there is one
            extra = {"caption": [caption]} if caption else {}
            logger.log_image(key, [array], step=step, **extra)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, array, global_step=step, dataformats="HWC")
