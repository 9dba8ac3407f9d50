"""Train a generative model: ``python train.py model=dcgan data=celeba data.root=DIR``.

Everything is configured in ``conf/``; ``python train.py --help`` lists the config groups and their choices.
"""

import gc

gc.disable()  # for the imports below: genlab.speed.freeze_imported_objects turns it back on

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from genlab.console import job, register_resolvers
from genlab.preset_data import with_preset_data
from genlab.run import train
from genlab.speed import freeze_imported_objects

freeze_imported_objects()
register_resolvers()  # ${unique_dir:...} in conf/hydra/default.yaml: one run directory per run


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # job(): Lightning's messages, warnings and any error's traceback go to <run dir>/train.log too; a bad-input
    # error ends the run with its message alone.
    with job():
        metrics = train(cfg)
    # A number for sweepers that optimise a metric (e.g. Optuna); plain runs ignore it.
    return metrics.get(cfg.get("optimized_metric")) if cfg.get("optimized_metric") else None


if __name__ == "__main__":
    # model=cyclegan alone trains on its demo data: conf/preset_data.yaml names each preset's data
    sys.argv[1:] = with_preset_data(sys.argv[1:], Path(__file__).parent / "conf" / "preset_data.yaml")
    main()
