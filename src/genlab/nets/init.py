"""Weight initialisation schemes."""

from torch import nn


def normal_init(module: nn.Module, std: float = 0.02) -> nn.Module:
    """N(0, std) for conv/linear weights and N(1, std) for norm scales, zero biases.

    Radford et al. 2016 (DCGAN), Sec. 4: "All weights were initialized from a zero-centered Normal
    distribution with standard deviation 0.02". Conditional BatchNorm's per-class scales are norm scales too, so they
    start N(1, std) (each class slightly different, as each BatchNorm channel is) with zero biases. Returns the module
    so it can wrap construction.
    """
    from genlab.nets.conditional import ConditionalBatchNorm2d

    for m in module.modules():
        if isinstance(m, ConditionalBatchNorm2d):
            nn.init.normal_(m.gain.weight, 1.0, std)
            nn.init.zeros_(m.bias.weight)
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)):
            if m.weight is not None:
                nn.init.normal_(m.weight, 1.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
