"""Packing (PacGAN, Lin et al. 2018, "PacGAN: The power of two samples in generative adversarial networks").

The discriminator judges m samples at once: m consecutive samples of a batch, all real or all fake, concatenated
along channels (images: (N, C, H, W) -> (N/m, m*C, H, W)) or features (points/vectors: (N, D) -> (N/m, m*D)), and
it gives one score per pack. A generator that collapses onto few modes makes packs of near-identical samples, which
a packed discriminator sees at once; the paper's toy experiments keep D's architecture and only widen its input
(fjxmlzn/PacGAN). Any discriminator built on :class:`genlab.nets.conditional.ConditionalDiscriminator` packs with
``pack=m`` (the switch ``model.discriminator.pack=M`` on any unconditional preset).
"""

from torch import Tensor


def check_pack(net: str, pack: int, num_classes: int) -> int:
    if not isinstance(pack, int) or isinstance(pack, bool) or pack < 1:
        raise ValueError(f"{net}: pack is the number of samples judged together (1 = no packing, PacGAN: 2-4), got {pack!r}.")
    if pack > 1 and num_classes:
        raise ValueError(
            f"{net}: packing (pack={pack}) judges {pack} samples with one score, but a class-conditional "
            f"discriminator (num_classes={num_classes}) reads one label per sample; use packing on unconditional presets."
        )
    return pack


def pack_samples(x: Tensor, pack: int) -> Tensor:
    """(N, C, ...) -> (N // pack, pack * C, ...): consecutive samples side by side along dim 1. The last
    N mod pack samples of a batch (an epoch's short last batch) are left out, the same ones for real and fake."""
    if pack == 1:
        return x
    usable = len(x) - len(x) % pack
    if usable == 0:
        raise ValueError(f"packing needs at least pack={pack} samples per batch, got {len(x)}; raise data.batch_size.")
    x = x[:usable]
    return x.reshape(usable // pack, pack * x.shape[1], *x.shape[2:])
