"""Speed switches, applied the same way to every model: ``channels_last`` and ``compile_nets`` (conf/train.yaml);
mixed precision and ``cudnn.benchmark`` are Lightning's own ``trainer.precision`` and ``trainer.benchmark``
(``trainer=fast`` sets both). docs/scale.md has the measurements.

Why per net and in place: compiling the whole LightningModule breaks ``toggle_optimizer`` in Lightning 2.6
(pytorch-lightning issue 21513), so each net (generator, discriminator, encoder, ...) is compiled on its own, with
``nn.Module.compile()``: it compiles the module's call and leaves the module where it is, so parameter names and
checkpoints are the same with and without compilation (``torch.compile(net)`` would wrap it and prefix every key with
``_orig_mod.``), and a checkpoint of a compiled run loads into an uncompiled model (``eval.py``) and vice versa.
"""

import ctypes
import gc
import os
import sys
from collections.abc import Iterator

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

SWITCHES = ("channels_last", "compile_nets")


def check_speed_settings(cfg: DictConfig) -> None:
    """One error naming the key for a switch that is not a boolean, and for ``cudnn.benchmark`` combined with
    ``deterministic`` (PyTorch would silently ignore one of them)."""
    for key in SWITCHES:
        value = cfg.get(key, False)
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r} (python train.py {key}=true).")
    trainer = cfg.get("trainer") or {}
    if trainer.get("benchmark") and trainer.get("deterministic"):
        raise ValueError(
            "trainer.benchmark=true (cudnn.benchmark: the fastest kernel per shape, chosen by timing) conflicts with "
            "trainer.deterministic=true (reproducible kernels only); PyTorch would ignore the latter. Pick one: "
            "trainer.deterministic=false for speed (trainer=fast), or trainer.benchmark=false for bit-reproducible runs."
        )


def skip_unloadable_nvml() -> None:
    """Turn off torch's NVML-based CUDA check where the NVML library cannot be loaded (CPU-only machines).

    Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` when imported, so that ``torch.cuda.is_available()`` asks NVML
    instead of initialising CUDA (forked DDP workers can then still use CUDA). Without NVML, torch retries loading
    the library on every call, then falls back to the CUDA runtime's device count anyway, and ``torch.optim`` asks on
    every optimizer step: 0.2-0.7 ms a step on these 2-core CPUs, 5 % of a toy model's batch. Where the library is
    missing the answer and its side effects are the same with the check off, so it is turned off; elsewhere it is
    left as Lightning set it.
    """
    if not sys.platform.startswith("linux") or os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") != "1":
        return
    try:
        ctypes.CDLL("libnvidia-ml.so.1")  # the library torch.cuda loads for the check
    except OSError:
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"


def freeze_imported_objects() -> None:
    """Collect once, move every object alive into the garbage collector's permanent generation (``gc.freeze``) and
    turn collection back on. ``train.py`` and ``eval.py`` turn it off before their imports and call this after them.

    Importing Lightning, torchmetrics, torchvision, W&B and Hydra builds ~470k objects that live until exit, and the
    collector's full passes would walk all of them: ~7 passes during the imports that free almost nothing (~1 s on a
    2-core CPU), the few during a run, and the interpreter's last one at exit (~1.5 s). Frozen, they are skipped.
    The one collection here first frees the imports' own cyclic garbage (~13k objects, ~8 MB). Import plus exit of
    ``genlab.run``: 8.8 s -> 6.1 s on the 2-core CPU (2026-12-07). CPython documents the same use of ``gc.freeze``
    before forking (DataLoader workers then share these pages too)."""
    gc.collect()
    gc.freeze()
    gc.enable()


def trainable_nets(model: nn.Module) -> Iterator[nn.Module]:
    """The nets a model trains, one by one: its direct children with trainable parameters, looking through
    ``ModuleList``/``ModuleDict`` containers (CycleGAN's pairs). Frozen copies (EMA generators, averages, fixed
    feature extractors) are left out: they only run under ``no_grad``, outside the training step's hot path."""
    for child in model.children():
        if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
            yield from trainable_nets(child)
        elif any(p.requires_grad for p in child.parameters()):
            yield child


def apply_speed_switches(model: nn.Module, channels_last: bool = False, compile_nets: bool = False) -> None:
    """Put the model's 4-D weights (conv kernels) and every image its nets are called with in channels-last memory
    format, and compile each trainable net separately, in place."""
    if channels_last:
        model.to(memory_format=torch.channels_last)
        for net in trainable_nets(model):
            # on the net's inputs, not the data: real batches, fakes and sampling calls all take this path
            net.register_forward_pre_hook(images_to_channels_last)
    if compile_nets:
        for net in trainable_nets(model):
            net.compile()


def images_to_channels_last(module: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: image tensors (N, C, H, W) among the positional inputs in channels-last format."""
    return tuple(a.contiguous(memory_format=torch.channels_last) if isinstance(a, Tensor) and a.dim() == 4 else a for a in args)
