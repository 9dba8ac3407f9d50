"""genlab.console in-process: run directories claimed once and atomically, which errors count as bad input, what
the end-of-run summary shows. The real train.py runs (console text, train.log, racing processes) are in test_cli.py."""

import multiprocessing
from pathlib import Path

import hydra
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.utils import setup_globals
from hydra.errors import InstantiationException
from omegaconf import OmegaConf

from conftest import CONF_DIR

from genlab.console import BadInputError, bad_input_message, claim_dir, job, register_resolvers, show_config
from genlab.run import headline


def claim_in_child(base: str) -> str:
    return claim_dir(base)


def test_claim_dir_gives_each_caller_its_own_directory(tmp_path: Path):
    base = str(tmp_path / "runs" / "2026-01-01_00-00-00_dcgan_mnist5k")
    claimed = [claim_dir(base) for _ in range(3)]
    assert claimed == [base, f"{base}-2", f"{base}-3"]
    assert all(Path(p).is_dir() for p in claimed)


def test_claim_dir_is_atomic_across_processes(tmp_path: Path):
    base = str(tmp_path / "runs" / "same_second")
    with multiprocessing.get_context("fork").Pool(4) as pool:
        claimed = pool.map(claim_in_child, [base] * 12)
    assert len(set(claimed)) == 12
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(Path(p).name for p in claimed)


def test_unique_dir_resolver_claims_once_per_config_and_is_shared_by_its_copies(tmp_path: Path):
    register_resolvers()
    cfg = OmegaConf.create({"dir": "${unique_dir:" + str(tmp_path / "run") + "}"})
    first, again = cfg.dir, cfg.dir
    copy = OmegaConf.create({"dir": "${unique_dir:" + str(tmp_path / "run") + "}"})
    OmegaConf.copy_cache(from_config=cfg, to_config=copy)  # what Hydra does for each job of a multirun
    assert first == again == copy.dir == str(tmp_path / "run")
    other = OmegaConf.create({"dir": "${unique_dir:" + str(tmp_path / "run") + "}"})  # another run, same second
    assert other.dir == str(tmp_path / "run-2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run-2"]


def test_the_default_run_sweep_and_eval_directories_are_claimed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    register_resolvers()
    try:
        dirs = []
        for name, key in [("train", "run"), ("train", "run"), ("train", "sweep"), ("eval", "run"), ("eval", "run")]:
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                cfg = compose(name, overrides=["ckpt_path=x"] if name == "eval" else [], return_hydra_config=True)
            # all in one second (composing registers Hydra's own ${now:} again, so after it)
            OmegaConf.register_new_resolver("now", lambda pattern: "2026-01-01_00-00-00", replace=True)
            dirs.append(cfg.hydra[key].dir)
    finally:
        setup_globals()  # Hydra's own ${now:} again
    stamp = "2026-01-01_00-00-00"
    assert dirs == [f"outputs/runs/{stamp}_dcgan_mnist5k", f"outputs/runs/{stamp}_dcgan_mnist5k-2",
                    f"outputs/multiruns/{stamp}", f"outputs/evals/{stamp}", f"outputs/evals/{stamp}-2"]
    assert all((tmp_path / d).is_dir() for d in dirs)


def test_messages_genlab_raised_are_bad_input_errors_python_raised_are_not():
    with pytest.raises(ValueError) as ours:
        show_config(OmegaConf.create({}), "bogus")
    assert bad_input_message(ours.value) == str(ours.value) and "print_config=bogus" in str(ours.value)
    # raised by Python inside genlab code (a format spec a string cannot take): a bug, its traceback must show
    with pytest.raises(ValueError) as bug:
        headline({"fid": "not a number"})
    assert bad_input_message(bug.value) is None
    # raised by a library
    with pytest.raises(ValueError) as library:
        int("x")
    assert bad_input_message(library.value) is None


def test_instantiation_errors_show_our_message_and_the_config_key():
    cfg = OmegaConf.create({"sample_metrics": {"_target_": "genlab.callbacks.SampleMetrics", "on_unsupported_data": "bogus"}})
    with pytest.raises(InstantiationException) as err:
        hydra.utils.instantiate(cfg.sample_metrics)
    message = bad_input_message(err.value)
    assert message.startswith("on_unsupported_data must be 'error' or 'skip', got 'bogus'.")
    assert "sample_metrics" in message and "ValueError(" not in message


def test_job_turns_bad_input_into_one_message_and_leaves_other_errors_alone(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(BadInputError) as compact:
        with job():
            show_config(OmegaConf.create({}), "bogus")
    assert str(compact.value).startswith("print_config=bogus") and isinstance(compact.value.__cause__, ValueError)
    with pytest.raises(ZeroDivisionError):
        with job():
            1 / 0
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")  # the full traceback of the original error, on the console too
    with pytest.raises(ValueError):
        with job():
            show_config(OmegaConf.create({}), "bogus")


def test_headline_keeps_every_metric_group_but_histograms_and_spreads():
    modes = {"step": 400, "modes": 8.0, "modes_high_quality": 0.91, "modes_reverse_kl": 0.05, "seconds": 0.2}
    assert headline(modes) == "modes 8, modes_high_quality 0.91, modes_reverse_kl 0.05"
    digits = {"step": 3, "fid": 68.1, "kid": 1.8, "kid_std": 0.1, "is": 1.0, "is_std": 0.0, "is_real": 7.9,
              "is_real_std": 0.2, "classes_covered": 1.0, "classes_fraction_0": 0.0, "classes_fraction_9": 1.0}
    assert headline(digits) == "fid 68.1, kid 1.8, is 1, is_real 7.9, classes_covered 1"
