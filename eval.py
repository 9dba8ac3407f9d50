"""Evaluate a trained run: ``python eval.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt [metrics=mnist]``.

``mode=sample`` writes ``num_samples`` seeded PNG files instead (for torch-fidelity, clean-fid, pytorch-fid).
Configured in ``conf/eval.yaml``; the model and data come from the run's own ``.hydra/config.yaml``.
"""

import gc

gc.disable()  # for the imports below: genlab.speed.freeze_imported_objects turns it back on

import hydra
from omegaconf import DictConfig

from genlab.console import job, register_resolvers, show_config
from genlab.evaluate import evaluate
from genlab.speed import freeze_imported_objects

freeze_imported_objects()
register_resolvers()  # ${unique_dir:...} in conf/eval.yaml: one directory per evaluation


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    # job(): messages, warnings and any error's traceback go to <eval dir>/eval.log too; a bad-input error ends the
    # run with its message alone.
    with job():
        show_config(cfg, cfg.get("print_config", True))
        evaluate(cfg)


if __name__ == "__main__":
    main()
