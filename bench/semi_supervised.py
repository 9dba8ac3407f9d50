"""Semi-supervised GAN vs a supervised classifier with the same net and the same labels, on MNIST-5k
(4500 training digits, 500 held out), after the same number of training batches.

    python bench/semi_supervised.py [--batches 3000] [--labels-per-class 10] [--eval-every 500] [--seed 0]

* ``ssgan``: the ``model=ssgan`` preset (Salimans et al. 2016, Sec. 5) trained by a real Lightning Trainer: each
  batch is 64 unlabelled digits + 64 of the labelled ones;
* ``supervised``: the preset's discriminator net (NoisyMLPDiscriminator, Gaussian noise on) trained on the labelled
  digits alone with cross-entropy, the preset's Adam settings, 64 labelled digits per step, the same number of steps.

Both use ``data.labels_per_class`` with the same split seed, so the labelled digits are the same. Prints a markdown
table: held-out error (%) after every ``--eval-every`` batches and at the end, training minutes.
"""

import argparse
import itertools
import os
import platform
import time
from datetime import date
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from genlab.callbacks import ClassifierError
from genlab.models.base import evaluating

CONF = Path(__file__).resolve().parents[1] / "conf"


def config(labels_per_class: int):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=["paths.root_dir=.", "paths.output_dir=/tmp/genlab_bench_ssgan", "model=ssgan",
                                           f"data.labels_per_class={labels_per_class}"])


def held_out_error(classifier, datamodule) -> float:
    images, labels = datamodule.val_set[:]
    with evaluating(classifier):
        return float((classifier(images).argmax(1) != labels).float().mean())


def train_ssgan(cfg, batches: int, eval_every: int, seed: int) -> dict:
    pl.seed_everything(seed, workers=True)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    model = instantiate(cfg.model)
    scorer = ClassifierError(every_n_steps=eval_every)
    trainer = pl.Trainer(max_steps=2 * batches, max_epochs=-1, accelerator="cpu", logger=False, callbacks=[scorer],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0)
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)  # two optimizer steps (D, G) per batch
    return {"errors": scorer.history, "minutes": (time.perf_counter() - start) / 60}


def train_supervised(cfg, batches: int, eval_every: int, seed: int) -> dict:
    pl.seed_everything(seed, workers=True)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    net = instantiate(cfg.model.discriminator)
    optimizer = instantiate(cfg.model.optimizer.discriminator)(net.parameters())
    images, labels = datamodule.train_set[datamodule.labelled_indices.tolist()]
    batch_size = cfg.data.batch_size
    # the labelled stream of the semi-supervised loader: cycled, reshuffled each pass
    order = itertools.chain.from_iterable(torch.randperm(len(labels)).tolist() for _ in itertools.count())
    errors, start = [], time.perf_counter()
    for step in range(1, batches + 1):
        pick = [next(order) for _ in range(batch_size)]
        loss = F.cross_entropy(net(images[pick]), labels[pick])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % eval_every == 0 or step == batches:
            errors.append(held_out_error(net, datamodule))
    return {"errors": errors, "minutes": (time.perf_counter() - start) / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=3000)
    parser.add_argument("--labels-per-class", type=int, default=10)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = config(args.labels_per_class)
    results = {
        "ssgan": train_ssgan(cfg, args.batches, args.eval_every, args.seed),
        "supervised (same net, same labels)": train_supervised(cfg, args.batches, args.eval_every, args.seed),
    }
    steps = [*range(args.eval_every, args.batches + 1, args.eval_every)]
    if steps[-1] != args.batches:
        steps.append(args.batches)
    labels = args.labels_per_class * cfg.data.num_classes
    threads = f"{torch.get_num_threads()} thread(s) (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})"
    print(f"MNIST-5k, {labels} labels, batch {cfg.data.batch_size}, seed {args.seed}; {platform.machine()} CPU, "
          f"{threads}, {date.today()}")
    print("| model | " + " | ".join(f"error after {s} batches" for s in steps) + " | minutes |")
    print("|---|" + "---|" * (len(steps) + 1))
    for name, result in results.items():
        cells = " | ".join(f"{100 * e:.1f} %" for e in result["errors"])
        print(f"| {name} | {cells} | {result['minutes']:.1f} |")


if __name__ == "__main__":
    main()
