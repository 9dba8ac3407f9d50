"""Optuna searches over config values: ``python train.py -m hparams_search=dcgan_lr``.

A Hydra sweeper on current Optuna (``pip install -e ".[sweep]"``), not ``hydra-optuna-sweeper``: that plugin (1.3)
pins ``optuna<3``, whose SQLite storage fails under SQLAlchemy 2, so it offers no persistent, resumable study
without pinning an old database stack too (docs/scale.md). The search space uses Hydra's sweep syntax, as that plugin
does: ``interval(a, b)`` (``tag(log, interval(a, b))`` on a log scale), ``range(a, b[, step])`` of integers and
``choice(x, y, ...)``; plain values are fixed for every trial.

Each trial is one Hydra job, launched by the configured launcher (in-process, ``submitit_local`` or
``submitit_slurm``), and its value is what ``train.py`` returns: the logged metric named by ``optimized_metric``.
With a storage (SQLite), the study persists: running the same command again adds ``n_trials`` trials to it, and
trials report each evaluation of the metric to it (:class:`OptunaPruning`), so the pruner can stop unpromising ones.
Optuna is imported only when a search runs: Hydra imports every sweeper plugin at each start.
"""

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from genlab.callbacks.periodic import batches_seen

log = logging.getLogger(__name__)

PRUNERS = ("median", "none")


def search_space(params: dict[str, str], arguments: list[str]) -> tuple[dict[str, Override], list[str]]:
    """The swept keys (config ``params`` first, command-line sweeps win) and the fixed overrides of every trial."""
    parser = OverridesParser.create()
    lines = [f"{key}={value}" for key, value in params.items()] + list(arguments)
    swept: dict[str, Override] = {}
    fixed: list[str] = []
    for override in parser.parse_overrides(lines):
        key = override.get_key_element()
        if override.is_sweep_override():
            swept[key] = override
        else:
            fixed = [line for line in fixed if not line.startswith(f"{key}=")] + [override.input_line]
    for key in swept:
        fixed = [line for line in fixed if not line.startswith(f"{key}=")]
    return swept, fixed


def suggest(trial, key: str, override: Override) -> Any:
    """Optuna's suggestion for one swept key."""
    sweep = override.value()
    if isinstance(sweep, IntervalSweep):
        return trial.suggest_float(key, float(sweep.start), float(sweep.end), log="log" in sweep.tags)
    if isinstance(sweep, RangeSweep) and all(isinstance(v, int) for v in (sweep.start, sweep.stop, sweep.step)):
        # Hydra's range excludes its stop, Optuna's suggest_int includes its high
        return trial.suggest_int(key, sweep.start, sweep.stop - sweep.step, step=sweep.step, log="log" in sweep.tags)
    if isinstance(sweep, (ChoiceSweep, RangeSweep)):
        values = list(override.sweep_iterator())
        if not all(isinstance(v, (str, int, float, bool)) or v is None for v in values):
            raise ValueError(f"{override.input_line}: Optuna chooses among plain values (numbers, strings, bools), not lists or dicts.")
        return trial.suggest_categorical(key, values)
    raise ValueError(
        f"{override.input_line}: the Optuna sweeper takes interval(a, b), tag(log, interval(a, b)), range(a, b, step) or "
        "choice(...) (Hydra's sweep syntax)."
    )


def trial_value(job_return, metric: str | None) -> float:
    """The number a trial's job returned, or a clear error saying why there is none."""
    value = job_return.return_value  # re-raises the job's exception
    if value is None:
        raise ValueError(
            f"the job returned no value: optimized_metric={metric} is not among the metrics the run logged (set "
            "optimized_metric to one of them, e.g. metrics/fid, and keep the metrics callback on)."
        )
    return float(value)


def make_pruner(name: str, n_startup_trials: int, warmup: int):
    """The pruner of the sweeper's settings. Optuna keeps no pruner in the storage, so trials build the same one."""
    import optuna

    if name not in PRUNERS:
        raise ValueError(f"hydra.sweeper.pruner={name!r}: choose one of {', '.join(PRUNERS)}.")
    if name == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=warmup)


class OptunaSweeper(Sweeper):
    """Runs ``n_trials`` trials, ``n_jobs`` at a time, each a job of the configured launcher; see the module docstring.
    Hydra finds the class through :mod:`hydra_plugins.genlab_optuna_sweeper` (plugins must live there)."""

    def __init__(
        self,
        study_name: str,
        storage: str | None = None,
        direction: str = "minimize",
        n_trials: int = 10,
        n_jobs: int = 1,
        seed: int | None = 0,
        n_startup_trials: int = 5,
        pruner: str = "median",
        pruner_warmup: int = 1,
        params: dict[str, str] | None = None,
    ):
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"hydra.sweeper.direction={direction!r}: choose minimize or maximize.")
        if pruner not in PRUNERS:
            raise ValueError(f"hydra.sweeper.pruner={pruner!r}: choose one of {', '.join(PRUNERS)}.")
        for name, value in (("n_trials", n_trials), ("n_jobs", n_jobs)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"hydra.sweeper.{name}={value!r}: expected a positive integer.")
        self.study_name, self.storage, self.direction = study_name, storage, direction
        self.n_trials, self.n_jobs, self.seed, self.n_startup_trials = n_trials, n_jobs, seed, n_startup_trials
        self.pruner, self.pruner_warmup = pruner, pruner_warmup
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context, task_function=task_function, config=config)

    def create_study(self):
        try:
            import optuna
        except ImportError as err:
            raise ImportError('The Optuna sweeper needs optuna: pip install -e ".[sweep]"') from err
        if self.storage and self.storage.startswith("sqlite:///"):
            Path(self.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return optuna.create_study(
            study_name=self.study_name,
            storage=self.storage,
            direction=self.direction,
            sampler=optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=self.n_startup_trials),
            pruner=make_pruner(self.pruner, self.n_startup_trials, self.pruner_warmup),
            load_if_exists=True,
        )

    def sweep(self, arguments: list[str]) -> dict[str, Any]:
        from optuna.trial import TrialState

        swept, fixed = search_space(self.params, arguments)
        if not swept:
            raise ValueError("the Optuna sweeper has nothing to search: set hydra.sweeper.params (see conf/hparams_search/).")
        study = self.create_study()
        metric = self.config.get("optimized_metric")
        # trials report their metric to the study (and may be pruned) when the run has the pruning callback and the
        # study lives in a storage the job can open
        pruning = OmegaConf.select(self.config, "callbacks.optuna_pruning") is not None and self.storage is not None
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        log.info(
            "Optuna study %s (%s): %d trials over %s; %d already in the study",
            self.study_name, self.storage or "in memory", self.n_trials, ", ".join(swept), len(study.trials),
        )
        errors: list[BaseException] = []
        job_idx = 0
        while job_idx < self.n_trials:
            trials = [study.ask() for _ in range(min(self.n_jobs, self.n_trials - job_idx))]
            batch = []
            for trial in trials:
                chosen = [f"{key}={suggest(trial, key, override)}" for key, override in swept.items()]
                batch.append(fixed + chosen + ([f"callbacks.optuna_pruning.trial={trial.number}"] if pruning else []))
            returns = self.launcher.launch(batch, initial_job_idx=job_idx)
            job_idx += len(batch)
            for trial, job_return in zip(trials, returns):
                try:
                    value = trial_value(job_return, metric)
                except Exception as err:
                    log.warning("trial %d failed: %s", trial.number, err)
                    study.tell(trial, state=TrialState.FAIL)
                    errors.append(err)
                    continue
                pruned = study.trials[trial.number].user_attrs.get("pruned_at_batch") is not None
                study.tell(trial, state=TrialState.PRUNED) if pruned else study.tell(trial, value)
                log.info("trial %d: %s=%.5g%s  %s", trial.number, metric, value, " (pruned)" if pruned else "", trial.params)
        if len(errors) == self.n_trials:
            raise RuntimeError(f"all {self.n_trials} trials failed; the first error: {errors[0]}") from errors[0]
        completed = [t for t in study.trials if t.state == TrialState.COMPLETE]
        results = {"name": self.study_name, "storage": self.storage, "trials": len(study.trials), "completed": len(completed)}
        if completed:
            results |= {"best_trial": study.best_trial.number, "best_value": study.best_value, "best_params": study.best_params}
            log.info("best of %d trials: %s=%.5g with %s", len(completed), metric, study.best_value, study.best_params)
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
        return results


class OptunaPruning(pl.Callback):
    """Reports ``monitor`` to trial ``trial`` of the study each time the run logs a new value of it (the sample
    metrics callback every ``every_n_steps`` batches) and stops the run when the pruner says so (the trial is then
    marked ``pruned_at_batch``). ``trial: null`` (a plain run, not a trial of a search): does nothing. Rank 0 only."""

    def __init__(
        self,
        monitor: str,
        storage: str | None,
        study_name: str,
        trial: int | None = None,
        pruner: str = "median",
        n_startup_trials: int = 5,
        pruner_warmup: int = 1,
    ):
        self.monitor, self.storage, self.study_name, self.trial_number = monitor, storage, study_name, trial
        self.pruner = (pruner, n_startup_trials, pruner_warmup)
        self._trial = None
        self._last = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.trial_number is None or not trainer.is_global_zero:
            return
        import optuna

        storage = optuna.storages.get_storage(self.storage)
        trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(self.study_name), self.trial_number)
        study = optuna.load_study(study_name=self.study_name, storage=storage, pruner=make_pruner(*self.pruner))
        self._trial = optuna.trial.Trial(study, trial_id)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if self._trial is None or value is None or value is self._last:
            return
        self._last = value
        step = batches_seen(trainer)
        self._trial.report(float(value), step)
        if self._trial.should_prune():
            self._trial.set_user_attr("pruned_at_batch", step)
            log.info("trial %d pruned after batch %d (%s=%.5g)", self.trial_number, step, self.monitor, float(value))
            trainer.should_stop = True
