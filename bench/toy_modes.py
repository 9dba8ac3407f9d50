"""2-D mode-collapse benchmark: every adversarial preset x {ring8, grid25} x seeds, VEEGAN / PacGAN protocol.

Each run trains the preset as `python train.py model=<preset> data=<data> seed=<seed>` would (same configs, real
Trainer), for ``--steps`` training steps (batches of 100, the papers' unit), then scores 2500 samples with ``genlab.metrics.modes.ModeCoverage``:
modes covered, % high-quality samples (within 3 std of the nearest mode) and the reverse KL of the mode histogram
to uniform. Prints mean +- std over seeds and writes the table, with machine, date and budget, to
docs/toy_modes.md next to the published VEEGAN Table 1 and PacGAN Table 1 rows.

    python bench/toy_modes.py --presets toy_ring8 toy_grid25 --workers 2   # the best rows: experiment configs
    python bench/toy_modes.py --steps 600 --workers 2            # every preset at one budget (CPU)
    python bench/toy_modes.py --presets toy_gan --data ring8 --seeds 1 --steps 200   # a quick look

Rows named after an experiment config (``toy_ring8``, ``toy_grid25``) train ``python train.py experiment=<row>``:
their own data, settings and budget (``max_batches`` loader batches of ``model.steps_per_batch`` steps each, or
``--steps`` steps when given), whatever ``--data`` says.

Runs are appended to a JSON-lines file as they finish (--results), so an interrupted benchmark can be reported
with --report-only. ``--rescore OLD.jsonl`` trains nothing: it scores the final checkpoint of each run listed in OLD
(its run directory under ``--runs``) with today's code and config, keeping OLD's training time: for a change of how
samples are drawn (model.standing_statistics) that leaves training as it was.
"""

import argparse
import datetime
import json
import math
import multiprocessing as mp
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ["toy_gan", "wgan", "wgan_gp", "lsgan", "hinge_gan", "pacgan2", "pacgan3", "pacgan4"]
# Rows that are a whole experiment config (conf/experiment/<row>.yaml): data, settings and budget of their own.
EXPERIMENTS = {"toy_ring8": "ring8", "toy_grid25": "grid25"}
# Rows that are a preset plus overrides: PacGAN-m is the toy GAN with a discriminator that judges m packed samples
# (Lin et al. 2018, Table 1: same toy nets, D input widened m times; genlab.nets.packing).
VARIANTS = {f"pacgan{m}": ("toy_gan", [f"model.discriminator.pack={m}"]) for m in (2, 3, 4)}
DATA = ["ring8", "grid25"]
NUM_MODES = {"ring8": 8, "grid25": 25}
IMAGES = ROOT / "docs" / "images" / "results"
RUNS = Path("/tmp/genlab_toy_modes")  # one run directory per (row, data, seed): its Lightning checkpoints

# Published numbers (../shared/references/vae_ar_modes.md section 3): modes / % high quality / reverse KL.
PUBLISHED = [
    ("VEEGAN Table 1: GAN", "1 / 99.3 / -", "3.3 / 0.5 / -"),
    ("VEEGAN Table 1: ALI", "2.8 / 0.13 / -", "15.8 / 1.6 / -"),
    ("VEEGAN Table 1: Unrolled GAN", "7.6 / 35.6 / -", "23.6 / 16 / -"),
    ("VEEGAN Table 1: VEEGAN", "8 / 52.9 / -", "24.6 / 40 / -"),
    ("PacGAN Table 1: GAN", "6.3 +- 0.5 / 98.2 / 0.45", "17.3 +- 0.8 / 94.8 / 0.70"),
    ("PacGAN Table 1: ALI", "6.6 / 97.6 / 0.36", "24.1 / 95.7 / 0.14"),
    ("PacGAN Table 1: PacGAN2", "7.9 / 95.6 / 0.07", "23.8 / 91.3 / 0.13"),
    ("PacGAN Table 1: PacGAN3", "7.8 / 97.7 / 0.10", "24.6 / 94.2 / 0.06"),
    ("PacGAN Table 1: PacGAN4", "7.8 / 95.9 / 0.07", "24.8 +- 0.2 / 93.6 / 0.04"),
]


def run_one(job: dict) -> dict:
    """Train one (preset, data, seed) for ``steps`` steps on one CPU thread and score 2500 samples; with
    ``job["rescore"]``, load the final checkpoint of that run from ``job["runs"]`` instead of training."""
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("WANDB_MODE", "disabled")
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    import pytorch_lightning as pl

    from genlab.callbacks.stopping import StopAfterBatches
    from genlab.evaluation import score_samples
    from genlab.metrics.modes import ModeCoverage
    from genlab.speed import skip_unloadable_nvml

    skip_unloadable_nvml()  # as train() does: Lightning's NVML-based CUDA check costs ~0.5 ms a step without NVML

    if job["preset"] in EXPERIMENTS:
        batches = job["steps"] // steps_per_batch(job["preset"])  # loader batches
        choice = [f"experiment={job['preset']}", *budget_overrides(job["preset"], batches)]
    else:
        batches = job["steps"]
        preset, extra = VARIANTS.get(job["preset"], (job["preset"], []))
        choice = [f"model={preset}", *extra, f"data={job['data']}"]
    overrides = [
        *choice, f"seed={job['seed']}", f"data.seed={job['seed']}",
        "logger=none", "callbacks=none", "trainer.accelerator=cpu", "print_config=false",
        "++trainer.enable_progress_bar=false", "++trainer.enable_model_summary=false",
        f"paths.output_dir={Path(job['runs']) / run_name(job)}",
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    pl.seed_everything(job["seed"], workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    if job.get("rescore"):
        datamodule.prepare_data()
        datamodule.setup("fit")
        model.load_state_dict(torch.load(final_checkpoint(job), weights_only=True)["state_dict"])
        seconds = job["train_seconds"]
    else:
        per_epoch = cfg.data.num_points // cfg.data.batch_size  # loader batches an epoch (drop_last)
        trainer = instantiate(
            cfg.trainer, logger=False, callbacks=[StopAfterBatches(batches)],
            max_epochs=math.ceil(batches / per_epoch), limit_train_batches=min(batches, per_epoch),
        )
        start = time.time()
        trainer.fit(model, datamodule=datamodule)
        seconds = time.time() - start
    metric = ModeCoverage()
    metric.prepare(datamodule)
    values = score_samples(model, {"m": metric}, num_samples=2500, batch_size=2500, seed=job["seed"])
    if job["preset"] in EXPERIMENTS:  # the picture of the row: the 2500 points it was scored on
        save_scatter(model, datamodule, job, values)
    return {k: v for k, v in job.items() if k not in ("rescore", "runs")} | {
        "modes": values["m_modes"],
        "high_quality": 100 * values["m_high_quality"],
        "reverse_kl": values["m_reverse_kl"],
        "train_seconds": seconds,
    }


def run_name(job: dict) -> str:
    return f"{job['preset']}_{job['data']}_{job['seed']}"


def final_checkpoint(job: dict) -> Path:
    """The last checkpoint Lightning wrote in the run's directory (``epoch=E-step=S[-vN].ckpt``; of equal steps the
    newest, a rerun's), which must be from the run's last epoch (an epoch of the 100k points is 1000 steps of 100)."""
    def epoch_step(path: Path) -> tuple[int, int]:
        epoch, step = re.fullmatch(r"epoch=(\d+)-step=(\d+)(?:-v\d+)?", path.stem).groups()
        return int(epoch), int(step)

    found = sorted(Path(job["runs"], run_name(job), "checkpoints").glob("epoch=*-step=*.ckpt"),
                   key=lambda p: (epoch_step(p)[1], p.stat().st_mtime))
    if not found:
        raise FileNotFoundError(f"--rescore: no checkpoint of {run_name(job)} in {Path(job['runs'], run_name(job))}.")
    epochs = epoch_step(found[-1])[0] + 1
    if epochs < math.ceil(job["steps"] / 1000):
        raise ValueError(f"--rescore: {found[-1]} ends epoch {epochs}, short of the run's {job['steps']} steps.")
    return found[-1]


def save_scatter(model, datamodule, job: dict, values: dict) -> None:
    """``docs/images/results/<row>_seed<seed>.png``: the run's 2500 scored samples over the data modes."""
    import torch
    from PIL import Image

    from genlab.callbacks.samples import scatter_plot

    with torch.no_grad():
        points = model.sample(2500, generator=torch.Generator().manual_seed(job["seed"]))
    title = (f"experiment={job['preset']}, seed {job['seed']}\n{job['steps']} steps: {values['m_modes']:.0f} modes, "
             f"{100 * values['m_high_quality']:.1f} % high quality")
    image = scatter_plot(points, datamodule.centers, title=title, size_px=320)
    Image.fromarray(image).save(IMAGES / f"{job['preset']}_seed{job['seed']}.png")


def compose_experiment(name: str):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=[f"experiment={name}"])


def steps_per_batch(name: str) -> int:
    """The training steps experiment config ``name`` takes on each loader batch (``model.steps_per_batch``)."""
    return int(compose_experiment(name).model.get("steps_per_batch", 1))


def experiment_budget(name: str) -> int:
    """The training steps of experiment config ``name``: ``max_batches`` loader batches of its steps_per_batch."""
    return int(compose_experiment(name).max_batches) * steps_per_batch(name)


def budget_overrides(name: str, batches: int) -> list[str]:
    """``max_batches=batches`` for experiment ``name``, with the phases of its per-batch lr schedule (constant, then
    linear decay) scaled to that budget, so a shorter run keeps the experiment's shape."""
    cfg = compose_experiment(name)
    overrides = [f"max_batches={batches}"]
    schedule = cfg.model.get("scheduler")
    if schedule is not None and str(schedule.get("_target_")).endswith("linear_decay_by_batch"):
        scale = batches / cfg.max_batches
        overrides += [f"model.scheduler.constant_batches={round(schedule.constant_batches * scale)}",
                      f"model.scheduler.decay_batches={max(1, round(schedule.decay_batches * scale))}"]
    return overrides


def mean_std(values: list[float], digits: int) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def table(results: list[dict]) -> list[str]:
    lines = [
        "| row | data | batches | seeds | modes | % high quality | reverse KL | train s/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for data in DATA:
        for preset in [*PRESETS, *EXPERIMENTS]:
            for steps in sorted({r["steps"] for r in results if r["preset"] == preset and r["data"] == data}):
                rows = [r for r in results if (r["preset"], r["data"], r["steps"]) == (preset, data, steps)]
                lines.append(
                    f"| {preset} | {data} | {steps} | {len(rows)} | {mean_std([r['modes'] for r in rows], 1)} / "
                    f"{NUM_MODES[data]} | {mean_std([r['high_quality'] for r in rows], 1)} | "
                    f"{mean_std([r['reverse_kl'] for r in rows], 2)} | "
                    f"{statistics.mean(r['train_seconds'] for r in rows):.0f} |"
                )
    return lines


def budget_share(budgets: list[int]) -> str:
    """"20000 batches are 5.00%" or, for rows of different lengths, "20000-80000 batches are 5.00-20.00%"."""
    low, high = min(budgets), max(budgets)
    if low == high:
        return f"{high} batches are {100 * high / 400_000:.2f}%"
    return f"{low}-{high} batches are {100 * low / 400_000:.2f}-{100 * high / 400_000:.2f}%"


def write_doc(results: list[dict], path: Path, budgets: list[int], wall_minutes: float | None, machine: str,
              rescored: bool = False) -> None:
    """``budgets``: the rows' batches; ``wall_minutes``: None when nothing was trained (--report-only, --rescore);
    ``rescored``: the rows score earlier runs' checkpoints (--rescore)."""
    published = ["| published | ring8 (modes / % HQ / rev. KL) | grid25 (modes / % HQ / rev. KL) |", "|---|---|---|"]
    published += [f"| {name} | {ring} | {grid} |" for name, ring, grid in PUBLISHED]
    text = "\n".join(
        [
            "# 2-D mode coverage: ring8 and grid25",
            "",
            "Generated by `bench/toy_modes.py`; the analysis below the tables is written by hand.",
            "",
            f"- **Date:** {datetime.date.today().isoformat()}  **Machine:** {machine}",
            "- **Budget:** the batches column: training steps on batches of 100 points per run (the generator steps "
            "every `n_critic`-th; the experiment rows take 8 such steps on each loader batch of 800, "
            "`model.steps_per_batch`), one CPU thread per run; PacGAN trains 400 epochs of 1000 batches "
            f"(400k batches), so {budget_share(budgets)} of their budget."
            + ("" if wall_minutes is None else f" Benchmark wall time {wall_minutes:.0f} min."),
            "- **Protocol:** each row exactly as `python train.py model=<preset> data=<data> seed=<s>` (or "
            "`experiment=<row>` for the experiment rows) builds it (the presets: toy MLPs of PacGAN, G 4x400 ReLU+BN, D 3x200 "
            "maxout-5, z 2-D; the experiment rows name their own nets and schedule in conf/experiment/; the loss, penalties, "
            "optimizer and n_critic), 5 seeds (model and data), 2500 samples per run scored with "
            "`genlab.metrics.modes.ModeCoverage` (high quality = within 3 std of the nearest mode; modes = modes "
            "nearest to at least one high-quality sample; reverse KL of the high-quality mode histogram to uniform).",
            "- Mean ± sample std over seeds (PacGAN reports standard errors over 10 trials, VEEGAN means over 5).",
            *(["- **Rescored** (`--rescore`): the rows score the final checkpoints of earlier runs with this code's "
                "sampler; the training times are those runs'."] if rescored else []),
            "",
            "## Measured",
            "",
            *table(results),
            "",
            "## Published (same data protocol, their own training budgets and architectures)",
            "",
            *published,
            "",
        ]
    )
    marker = "<!-- analysis -->"
    analysis = path.read_text().split(marker, 1)[1] if path.exists() and marker in path.read_text() else "\n"
    path.write_text(text + marker + analysis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps (batches of 100) per run (default: 600 for presets, the experiment's budget for experiments)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--presets", nargs="+", default=PRESETS, choices=[*PRESETS, *EXPERIMENTS])
    parser.add_argument("--data", nargs="+", default=DATA, choices=DATA)
    parser.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--results", type=Path, default=ROOT / "outputs" / "toy_modes.jsonl")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "toy_modes.md")
    parser.add_argument("--report-only", action="store_true", help="write the table from --results, train nothing")
    parser.add_argument("--rescore", type=Path, default=None,
                        help="a results file: score its runs' final checkpoints again with today's code, train nothing")
    parser.add_argument("--runs", type=Path, default=RUNS, help="the runs' directories (checkpoints)")
    args = parser.parse_args()

    start = time.time()
    if not args.report_only:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        if args.first_seed == 0:
            args.results.write_text("")  # a new benchmark; later seeds (--first-seed) add to it
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        if args.rescore:
            jobs = [json.loads(line) | {"rescore": True} for line in args.rescore.read_text().splitlines() if line.strip()]
            jobs = [job for job in jobs if job["preset"] in args.presets and job["seed"] in seeds]
        else:
            jobs = [
                {"preset": p, "data": d, "seed": s, "steps": args.steps or 600}
                for d in args.data for p in args.presets if p not in EXPERIMENTS for s in seeds
            ] + [
                {"preset": p, "data": EXPERIMENTS[p], "seed": s, "steps": args.steps or experiment_budget(p)}
                for p in args.presets if p in EXPERIMENTS for s in seeds
            ]
        jobs = [job | {"runs": str(args.runs)} for job in jobs]
        with mp.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
            for result in pool.imap_unordered(run_one, jobs):
                with args.results.open("a") as f:
                    f.write(json.dumps(result) + "\n")
                print(json.dumps(result), flush=True)
    results = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
    budgets = [r["steps"] for r in results] or [args.steps or 600]
    machine = f"CPU only, {os.cpu_count()} cores shared with other jobs ({platform.processor() or platform.machine()})"
    machine += "" if args.rescore else f", {args.workers} runs in parallel"
    print("\n".join(table(results)))
    trained = not (args.report_only or args.rescore)
    write_doc(results, args.doc, budgets, (time.time() - start) / 60 if trained else None, machine, bool(args.rescore))
    print(f"wrote {args.doc}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
