"""Time per training batch of genlab's train flow (``python train.py``: the composed config, the default callbacks and
logger, the real Trainer) against a plain PyTorch loop doing the same D + G step with the preset's nets, losses and
optimizers.

    python bench/step_time.py                        # DCGAN on MNIST-5k (the default run)
    python bench/step_time.py --table toy            # the 2-D toy MLPs (model=toy_gan data=ring8), issue 13
    python bench/step_time.py --table gpu            # DCGAN 64 px, batch 128: fp32 / bf16 / channels_last / compile
    python bench/step_time.py --table gpu --device cpu --steps 3 --warmup 2 --repeats 1 data.batch_size=8 \\
        model.generator.width=8 model.discriminator.width=8     # the GPU table's code path on a CPU, tiny

The two paths run interleaved batch by batch in one process: after each batch of the train flow, a callback runs
as many plain steps as that batch took (one, or ``model.steps_per_batch``; with its own nets and its own copy of the
data loader, in batches of one step) and times them; times are per step. The framework's batch is
everything else in the cycle (Lightning's loop, data, training step, callbacks, logger). Background load thus hits
both alike. A third path, the floor, runs the plain step as the smallest LightningModule that can (manual
optimization, no callbacks, logger, progress bar or checkpoints), paired with the plain loop the same way: what
Lightning itself costs a batch, which no change in genlab can remove. Per run, the medians over batches ``warmup .. warmup + steps`` (start-up, compilation and the occasional
batch with a grid or a checkpoint do not move a median); the table gives the median and the spread (min-max) of
``--repeats`` runs. genlab / plain is the median of the per-batch ratios.
"""

import argparse
import platform
import statistics
import tempfile
import time
from contextlib import nullcontext
from datetime import date
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from genlab.run import train

CONF = Path(__file__).resolve().parents[1] / "conf"

TABLES: dict[str, dict[str, list[str]]] = {
    # `python train.py` (conf/demo/dcgan_mnist5k.yaml), then without each of its two CPU speed settings
    "default": {
        "DCGAN width 32, MNIST-5k 32 px, batch 32 (as shipped)": [],
        "  fresh fakes for the G step (model.reuse_fakes=false)": ["model.reuse_fakes=false"],
        "  NCHW (channels_last=false)": ["channels_last=false"],
        "  neither": ["model.reuse_fakes=false", "channels_last=false"],
    },
    # the toy preset as `python train.py model=toy_gan data=ring8` runs it, then without what genlab adds per batch:
    # losses handed to Lightning every 10th batch (~1 ms a value in Lightning 2.6), the callbacks and the logger
    "toy": {
        "toy_gan, ring8, batch 100": ["model=toy_gan", "data=ring8"],
        "  losses logged every 100 batches": ["model=toy_gan", "data=ring8", "trainer.log_every_n_steps=100"],
        "  no logging, callbacks, logger or bar": [
            "model=toy_gan", "data=ring8", "trainer.log_every_n_steps=100000", "callbacks=none", "logger=none",
            "++trainer.enable_progress_bar=false",
        ],
        # a loader batch of 8 x 100 split into 8 steps (model.steps_per_batch): Lightning's and the callbacks' work
        # is paid once per 8 steps
        "  8 steps a loader batch (8 x 100)": ["model=toy_gan", "data=ring8", "data.batch_size=800", "model.steps_per_batch=8"],
        # the 2-D experiments as shipped (64-unit nets, packing 2, 8 steps of 100 a batch), then one step a batch
        "experiment=toy_ring8": ["experiment=toy_ring8"],
        "  one step a batch of 100": ["experiment=toy_ring8", "data.batch_size=100", "model.steps_per_batch=1"],
    },
    # DCGAN at CelebA's size from the embedded digits (64 px, 3 channels): no download on a GPU machine
    "gpu": {
        "fp32": [],
        "bf16-mixed": ["trainer.precision=bf16-mixed"],
        "channels_last": ["channels_last=true"],
        "compile_nets": ["compile_nets=true"],
        "trainer=fast + channels_last + compile_nets": ["trainer=fast", "channels_last=true", "compile_nets=true"],
    },
}
GPU_SETUP = ["data.image_size=64", "data.channels=3", "data.batch_size=128"]


class PlainStep:
    """The same step written as a plain PyTorch loop: the next batch from its own copy of the data loader, D on real
    and detached fakes, then G with D frozen (on fresh fakes, or on D's with ``model.reuse_fakes``), Adam for both,
    from the preset's own nets, losses and optimizers; the speed switches applied by hand (autocast, channels-last
    tensors, compiled nets)."""

    def __init__(self, cfg: DictConfig, device: torch.device):
        # batches of one step's size: the framework's loader batches hold model.steps_per_batch of them
        self.steps_per_batch = cfg.model.get("steps_per_batch", 1)
        self.loader, self.batches = train_loader(cfg, cfg.data.batch_size // self.steps_per_batch), iter(())
        model = instantiate(cfg.model)
        self.G, self.D = model.generator.to(device), model.discriminator.to(device)
        self.d_opt = instantiate(cfg.model.optimizer.discriminator)(self.D.parameters())
        self.g_opt = instantiate(cfg.model.optimizer.generator)(self.G.parameters())
        self.d_loss, self.g_loss = model.discriminator_loss, model.generator_loss
        self.reuse_fakes = model.reuse_fakes
        self.memory_format = torch.channels_last if cfg.channels_last else torch.preserve_format
        if cfg.channels_last:
            self.G.to(memory_format=torch.channels_last), self.D.to(memory_format=torch.channels_last)
        if cfg.compile_nets:
            self.G.compile(), self.D.compile()
        bf16 = str(cfg.trainer.precision).startswith("bf16")
        self.autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else nullcontext
        self.device = device

    def fakes(self, n: int, with_graph: bool) -> torch.Tensor:
        with self.autocast(), torch.set_grad_enabled(with_graph):
            return self.G(torch.randn(n, self.G.latent_dim, device=self.device))

    def generator_fakes(self, judged: torch.Tensor) -> torch.Tensor:
        """The fakes the G step trains on: those D just judged (``model.reuse_fakes``), or a fresh batch."""
        return judged if self.reuse_fakes else self.fakes(len(judged), with_graph=True)

    def discriminator_objective(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """D's loss on ``real`` and detached fakes."""
        with self.autocast():
            return self.d_loss(self.D(real), self.D(fake.detach()))

    def generator_objective(self, fake: torch.Tensor) -> torch.Tensor:
        """G's loss on fakes made with their graph."""
        with self.autocast():
            return self.g_loss(self.D(fake))

    def __call__(self) -> None:
        batch = next(self.batches, None)
        if batch is None:
            self.batches = iter(self.loader)
            batch = next(self.batches)
        real = batch.images.to(self.device, memory_format=self.memory_format)
        fake = self.fakes(len(real), with_graph=self.reuse_fakes)
        loss = self.discriminator_objective(real, fake)
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.d_opt.step()
        self.D.requires_grad_(False)  # what toggle_optimizer does for the G step
        loss = self.generator_objective(self.generator_fakes(fake))
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.g_opt.step()
        self.D.requires_grad_(True)


def train_loader(cfg: DictConfig, batch_size: int):
    """The preset's training loader, in batches of ``batch_size``."""
    datamodule = instantiate(cfg.data, batch_size=batch_size)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule.train_dataloader()


class BareLightningStep(pl.LightningModule):
    """The plain step's objectives driven by Lightning's manual-optimization API and nothing else:
    ``self.optimizers()``, ``manual_backward``, ``toggle_optimizer`` around the G step, the wrapped optimizers'
    ``step``; one step on each of ``steps_per_batch`` slices of a loader batch, as ``AdversarialModule`` takes them."""

    def __init__(self, step: PlainStep):
        super().__init__()
        self.automatic_optimization = False
        self.step = step
        self.G, self.D = step.G, step.D

    def configure_optimizers(self):
        return [self.step.d_opt, self.step.g_opt]

    def training_step(self, batch, batch_idx: int) -> None:
        d_opt, g_opt = self.optimizers()
        images = batch.images.to(memory_format=self.step.memory_format)
        for real in images.chunk(self.step.steps_per_batch):
            fake = self.step.fakes(len(real), with_graph=self.step.reuse_fakes)
            loss = self.step.discriminator_objective(real, fake)
            d_opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            d_opt.step()
            self.toggle_optimizer(g_opt)
            loss = self.step.generator_objective(self.step.generator_fakes(fake))
            g_opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            g_opt.step()
            self.untoggle_optimizer(g_opt)


class PairedTimer(pl.Callback):
    """Times the train flow and the plain loop batch by batch, interleaved in one process: after each framework batch
    it runs as many plain steps as that batch took (``model.steps_per_batch``), and records seconds per step. A framework batch is everything between the end of one plain step and the start of the
    next (Lightning's loop, data, training step, every callback and logger); pairing them batch by batch exposes
    both paths to the same background load, which on a shared machine moves by tens of percent within seconds."""

    #: the plain step of the next run (its nets are built before the run and cannot pass through the config) and
    #: the timer of the last run
    next_plain: PlainStep | None = None
    last: "PairedTimer | None" = None

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.steps, self.plain = warmup, steps, PairedTimer.next_plain
        self.framework_seconds: list[float] = []
        self.plain_seconds: list[float] = []
        self.mark = 0.0
        PairedTimer.last = self

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        start = clock(pl_module.device)
        for _ in range(self.plain.steps_per_batch):
            self.plain()
        end = clock(pl_module.device)
        if batch_idx >= self.warmup:
            self.framework_seconds.append((start - self.mark) / self.plain.steps_per_batch)
            self.plain_seconds.append((end - start) / self.plain.steps_per_batch)
        self.mark = end


def clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def compose_run(overrides: list[str], out: Path) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=["paths.root_dir=.", f"paths.output_dir={out}", "print_config=false", *overrides])


def paired_times(overrides: list[str], steps: int, warmup: int, device: str) -> tuple[list[float], list[float]]:
    """``python train.py <overrides>`` in this process with the paired timer among the default callbacks: per-batch
    seconds of the framework and of the plain loop."""
    with tempfile.TemporaryDirectory() as out:
        cfg = compose_run([*overrides, f"max_batches={warmup + steps}", f"trainer.accelerator={device}"], Path(out))
        PairedTimer.next_plain = PlainStep(cfg, torch.device(device))
        timer = {"_target_": f"{__name__}.PairedTimer", "warmup": warmup, "steps": steps}
        OmegaConf.update(cfg, "callbacks.paired_timer", timer, force_add=True)
        try:
            train(cfg)
        finally:
            PairedTimer.next_plain = None
    return PairedTimer.last.framework_seconds, PairedTimer.last.plain_seconds


def floor_times(overrides: list[str], steps: int, warmup: int, device: str) -> tuple[list[float], list[float]]:
    """The same pairing for :class:`BareLightningStep` in a Trainer with nothing but the timer: per-batch seconds of
    bare Lightning and of the plain loop."""
    with tempfile.TemporaryDirectory() as out:
        cfg = compose_run([*overrides, f"trainer.accelerator={device}"], Path(out))
        pl.seed_everything(cfg.seed, verbose=False)
        bare = BareLightningStep(PlainStep(cfg, torch.device(device)))
        PairedTimer.next_plain = PlainStep(cfg, torch.device(device))
        trainer = pl.Trainer(
            accelerator=device, devices=1, max_steps=2 * bare.step.steps_per_batch * (warmup + steps), logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, callbacks=[PairedTimer(warmup, steps)],
            default_root_dir=out,
        )
        try:
            trainer.fit(bare, train_dataloaders=train_loader(cfg, cfg.data.batch_size))
        finally:
            PairedTimer.next_plain = None
    return PairedTimer.last.framework_seconds, PairedTimer.last.plain_seconds


def spread(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    median, low, high = (v * scale for v in (statistics.median(values), min(values), max(values)))
    return f"{median:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", choices=sorted(TABLES), default="default")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="alternate the two paths this often; report medians")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every row, e.g. data.batch_size=128")
    args = parser.parse_args()
    common = [*(GPU_SETUP if args.table == "gpu" else []), *args.overrides]
    rows = []
    for name, row in TABLES[args.table].items():
        overrides = [*row, *common]
        cfg = compose_run(overrides, Path(tempfile.gettempdir()))
        batch_size = cfg.data.batch_size // cfg.model.get("steps_per_batch", 1)  # a step's
        runs, floor_runs = [], []
        for _ in range(args.repeats):  # alternated, so a change in background load hits both
            runs.append(paired_times(overrides, args.steps, args.warmup, args.device))
            floor_runs.append(floor_times(overrides, args.steps, args.warmup, args.device))
        framework = [statistics.median(f) for f, _ in runs]
        plain = [statistics.median(p) for _, p in runs]
        ratios = [statistics.median([a / b for a, b in zip(f, p)]) for f, p in runs]
        floor = [statistics.median([a / b for a, b in zip(f, p)]) for f, p in floor_runs]
        rows.append((name, plain, framework, ratios, floor, batch_size))
    hardware = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    print(f"\nms per step (D + G): median over {args.steps} batches after {args.warmup} warm-up, the two paths "
          f"interleaved batch by batch; median (min-max) of {args.repeats} runs; {hardware}; torch {torch.__version__}; "
          f"{date.today()}; overrides: {' '.join(common) or 'none'}")
    print("| setting | plain loop, ms | genlab train flow, ms | genlab / plain | bare Lightning / plain | images/s plain "
          "| images/s genlab |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, plain, framework, ratios, floor, batch_size in rows:
        print(f"| {name} | {spread(plain, 1e3)} | {spread(framework, 1e3)} | {spread(ratios, digits=3)} | "
              f"{spread(floor, digits=3)} | {batch_size / statistics.median(plain):.0f} | "
              f"{batch_size / statistics.median(framework):.0f} |")


if __name__ == "__main__":
    main()
