"""Scale-out as users run it: ``python train.py -m hparams_search=dcgan_lr`` (genlab's Optuna sweeper: a persistent
SQLite study that a second command resumes, the best value written out), Optuna pruning inside a real run, and a
``hydra/launcher=submitit_local`` multirun of two jobs."""

import os
from pathlib import Path

import pytest
import yaml

from conftest import FAST_TRAINER, SMALL_DCGAN, compose_config, run_script
from genlab.run import train

optuna = pytest.importorskip("optuna")  # pip install -e ".[sweep]" (in the dev extra)

TINY_SEARCH = [
    "hparams_search=dcgan_lr",
    *SMALL_DCGAN,
    "max_batches=4",
    "callbacks.sample_metrics.every_n_steps=2",
    "callbacks.sample_metrics.num_samples=100",
    "metrics.real_samples=500",
    "callbacks.sample_grid.every_n_steps=4",
    "callbacks.sample_grid.num_samples=16",
    "print_config=false",
    "++trainer.enable_model_summary=false",
    "logger=none",
]


def env() -> dict[str, str]:
    return os.environ | {"WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}


def search(tmp_path: Path, name: str, trials: int):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    result = run_script(
        "train.py",
        ["-m", *TINY_SEARCH, f"hydra.sweeper.n_trials={trials}", f"hydra.sweeper.storage={storage}",
         f"hydra.sweep.dir={tmp_path / name}"],
        cwd=tmp_path, env=env(),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return optuna.load_study(study_name="dcgan_lr", storage=storage), yaml.safe_load((tmp_path / name / "optimization_results.yaml").read_text())


@pytest.mark.slow
def test_optuna_search_keeps_its_study_and_a_second_command_adds_trials(tmp_path):
    study, results = search(tmp_path, "first", trials=3)
    trials = study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    values = [t.value for t in trials]
    assert results["best_value"] == min(values) and results["trials"] == 3
    assert results["best_params"] == trials[values.index(min(values))].params
    for trial in trials:  # the search space of conf/hparams_search/dcgan_lr.yaml, each trial a real run's FID
        assert set(trial.params) == {"model.optimizer.generator.lr", "model.optimizer.discriminator.lr"}
        assert all(2e-5 <= lr <= 2e-3 for lr in trial.params.values())
        assert trial.value > 0 and trial.intermediate_values  # reported by the pruning callback at batches 2 and 4
    assert len({tuple(t.params.values()) for t in trials}) == 3

    resumed, results = search(tmp_path, "second", trials=2)
    assert len(resumed.trials) == 5 and results["trials"] == 5
    assert [t.params for t in resumed.trials[:3]] == [t.params for t in trials]  # the first three kept as they were
    assert results["best_value"] == min(t.value for t in resumed.trials)


def test_pruning_stops_a_trial_worse_than_the_earlier_ones(tmp_path):
    """A study whose one finished trial reached FID 0 at batch 2: the median pruner stops the next trial at its first
    evaluation, so the run ends after batch 2 of 6 and the trial is marked pruned."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="prune", storage=storage)
    done = study.ask()
    done.report(0.0, 2)
    study.tell(done, 0.0)
    trial = study.ask()
    cfg = compose_config(tmp_path, [
        *FAST_TRAINER, *SMALL_DCGAN, "metrics=mnist", "metrics.real_samples=500",
        "callbacks.sample_metrics.every_n_steps=2", "callbacks.sample_metrics.num_samples=100", "logger=none",
        "+callbacks.optuna_pruning._target_=genlab.sweeps.OptunaPruning", "+callbacks.optuna_pruning.monitor=metrics/fid",
        f"+callbacks.optuna_pruning.storage={storage}", "+callbacks.optuna_pruning.study_name=prune",
        f"+callbacks.optuna_pruning.trial={trial.number}", "+callbacks.optuna_pruning.n_startup_trials=1",
        "+callbacks.optuna_pruning.pruner_warmup=0",
    ])
    metrics = train(cfg)
    stored = optuna.load_study(study_name="prune", storage=storage).trials[trial.number]
    assert stored.user_attrs["pruned_at_batch"] == 2
    assert list(stored.intermediate_values) == [2] and stored.intermediate_values[2] == pytest.approx(metrics["metrics/fid"])


@pytest.mark.slow
def test_submitit_local_multirun_of_two_jobs(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "multi"
    result = run_script(
        "train.py",
        ["-m", "hydra/launcher=submitit_local", "model=gan,dcgan", *FAST_TRAINER, "metrics=none", "logger=none",
         "++trainer.limit_train_batches=3", "callbacks.sample_grid.num_samples=16", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env(),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for job in ("0_gan_mnist5k", "1_dcgan_mnist5k"):  # each job ran in its own process and wrote its checkpoint
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file(), sorted(p.name for p in sweep.iterdir())
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2


def test_search_space_reads_hydra_sweep_syntax():
    from genlab.sweeps import search_space, suggest

    swept, fixed = search_space(
        {"model.optimizer.generator.lr": "tag(log, interval(1e-5, 1e-3))", "data.batch_size": "range(16, 80, 16)",
         "model/loss": "choice(hinge, non_saturating)", "seed": "1"},
        ["seed=7", "model.n_critic=choice(1, 5)"],  # the command line: a fixed value wins, a sweep joins
    )
    assert fixed == ["seed=7"] and set(swept) == {"model.optimizer.generator.lr", "data.batch_size", "model/loss", "model.n_critic"}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        values = {key: suggest(trial, key, override) for key, override in swept.items()}
        assert 1e-5 <= values["model.optimizer.generator.lr"] <= 1e-3
        assert values["data.batch_size"] in (16, 32, 48, 64)  # Hydra's range excludes its stop
        assert values["model/loss"] in ("hinge", "non_saturating") and values["model.n_critic"] in (1, 5)
        study.tell(trial, 0.0)
    assert study.trials[0].distributions["model.optimizer.generator.lr"].log
