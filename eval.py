"""Evaluate a trained run: ``python eval.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt [metrics=mnist]``.

``mode=sample`` writes ``num_samples`` seeded PNG files instead (for torch-fidelity, clean-fid, pytorch-fid).
Configured in ``conf/eval.yaml``; the model and data come from the run's own ``.hydra/config.yaml``.
"""

import hydra
from omegaconf import DictConfig

from genlab.evaluate import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
