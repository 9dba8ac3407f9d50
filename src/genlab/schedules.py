"""Learning-rate schedules the presets name in their configs (Hydra ``_partial_: true``: the optimizer is added)."""

from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def linear_decay(optimizer: Optimizer, constant_epochs: int, decay_epochs: int) -> LambdaLR:
    """The initial lr for ``constant_epochs`` epochs, then linearly down to 0 over ``decay_epochs`` more: the
    ``linear`` policy of pix2pix/CycleGAN (``n_epochs`` / ``n_epochs_decay`` in junyanz/pytorch-CycleGAN-and-pix2pix,
    ``models/networks.py`` ``get_scheduler``: factor 1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1)) and
    StarGAN's decay. Step it once per epoch; its position is part of the checkpoint (Lightning saves schedulers)."""
    if constant_epochs < 0 or decay_epochs < 0:
        raise ValueError(
            f"linear_decay needs constant_epochs >= 0 and decay_epochs >= 0, got {constant_epochs} and {decay_epochs}."
        )

    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - constant_epochs) / float(decay_epochs + 1)

    return LambdaLR(optimizer, factor)


def linear_decay_by_batch(optimizer: Optimizer, constant_batches: int, decay_batches: int) -> dict[str, Any]:
    """:func:`linear_decay` counted in training batches and stepped after every batch, for budgets given in batches
    (``max_batches``): the lr holds for ``constant_batches``, then falls linearly over ``decay_batches`` and stays at
    0 after them. A decay to zero is what lets the 2-D toy GANs concentrate their mass on the std-0.01 modes (ring8:
    high-quality samples 3 % at a constant lr 1e-3, 84 % with the decay, after 3000 batches; docs/toy_modes.md).
    Returned in Lightning's scheduler-config form with ``interval: step``, which :class:`GenerativeModule` reads."""
    if constant_batches < 0 or decay_batches < 1:
        raise ValueError(
            "linear_decay_by_batch needs constant_batches >= 0 and decay_batches >= 1 (set decay_batches to the run's "
            f"budget, e.g. ${{max_batches}}), got {constant_batches} and {decay_batches}."
        )

    def factor(batch: int) -> float:
        # batch b trains at this factor: 1 up to batch constant_batches, 1/decay_batches on the budget's last batch
        return max(0.0, 1.0 - max(0, batch - constant_batches) / float(decay_batches))

    return {"scheduler": LambdaLR(optimizer, factor), "interval": "step"}
