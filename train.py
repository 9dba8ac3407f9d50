"""Train a generative model: ``python train.py model=dcgan data=celeba data.root=DIR``.

Everything is configured in ``conf/``; ``python train.py --help`` lists the config groups and their choices.
"""

import hydra
from omegaconf import DictConfig

from genlab.run import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    # A number for sweepers that optimise a metric (e.g. Optuna); plain runs ignore it.
    return metrics.get(cfg.get("optimized_metric")) if cfg.get("optimized_metric") else None


if __name__ == "__main__":
    main()
