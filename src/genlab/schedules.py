"""Learning-rate schedules the presets name in their configs (Hydra ``_partial_: true``: the optimizer is added)."""

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
