"""``CycleGAN``: unpaired translation with two generators held to each other by cycle consistency (Zhu et al. 2017).

G_AB maps domain A (the batch's ``source``) to B (``images``), G_BA maps back; D_A judges A images (real A vs
G_BA(b)), D_B judges B images (real B vs G_AB(a)). (The official code names them the other way round: its netD_A
judges B images.) Per batch, as ``optimize_parameters`` of the official ``models/cycle_gan_model.py``
(junyanz/pytorch-CycleGAN-and-pix2pix):

1. one step of the generators' optimizer (both generators, the discriminators frozen) on
   ``adv_AB + adv_BA + lambda_cycle * (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)
   + lambda_identity * lambda_cycle * (|G_AB(b) - b|_1 + |G_BA(a) - a|_1)``,
   with the least-squares adversarial loss ``adv_AB = E[(D_B(G_AB(a)) - 1)^2]`` (Sec. 4: "we replace the negative
   log likelihood objective by a least-squares loss"; the official ``GANLoss('lsgan')`` is ``nn.MSELoss``);
2. one step of the discriminators' optimizer (both discriminators) on
   ``1/2 (E[(D(real) - 1)^2] + E[D(fake)^2])`` per discriminator (halved to slow D down, Appendix 7.1), the fakes
   drawn from an :class:`~genlab.models.image_pool.ImagePool` of 50 past fakes per discriminator.

The learning rate is constant, then decays linearly to 0 (``scheduler``: :func:`genlab.schedules.linear_decay`),
stepped once per epoch. A checkpoint holds all four nets, both optimizers, the schedule position, the module's
random stream and both image pools, so ``ckpt_path=`` resumes a run where it stopped.

Data: unpaired batches (``datamodule.pairing == "unpaired"``: ``source`` an A image, ``images`` an unrelated B
image). Paired data is accepted too and trained as unpaired: CycleGAN never reads ``images`` as the translation of
``source`` (the official code trains on paired datasets' A and B folders the same way). Data without a source
(multi-domain, plain image data) is refused with what to pick instead.
"""

from collections.abc import Callable
from itertools import chain
from typing import Any

import torch
from torch import Tensor, nn

from genlab.data.batch import Batch
from genlab.losses import l1_loss, least_squares_discriminator_loss, least_squares_generator_loss
from genlab.models.image_pool import ImagePool
from genlab.models.translation import TranslationModule

OptimizerFactory = Callable[..., torch.optim.Optimizer]
PLAYERS = ("generators", "discriminators")
POOLS_KEY = "genlab_image_pools"  # checkpoint key: {"a": (k, C, H, W), "b": ...} tensors (weights_only loadable)


def generator_adversarial_loss(scores: Tensor) -> Tensor:
    """The generators' least-squares loss as CycleGAN trains it: E[(D(G(x)) - 1)^2] (Sec. 4; ``nn.MSELoss`` in the
    official ``GANLoss``), twice Mao et al.'s 1/2 E[...], so lambda_cycle = 10 weighs what it weighs officially."""
    return 2.0 * least_squares_generator_loss(scores)


def discriminator_adversarial_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """1/2 (E[(D(y) - 1)^2] + E[D(G(x))^2]): CycleGAN's halved D objective (Appendix 7.1; the official
    ``backward_D_basic``: ``(loss_D_real + loss_D_fake) * 0.5``), which is exactly Mao et al.'s Eq. 2 for D."""
    return least_squares_discriminator_loss(real_scores, fake_scores)


class CycleGAN(TranslationModule):
    """Two generators, two PatchGAN discriminators, cycle and identity L1 terms, image pools, linear LR decay.

    Args:
        generator_ab, generator_ba: A -> B and B -> A image translators (``genlab.nets.ResnetGenerator``).
        discriminator_a, discriminator_b: patch scores for A and for B images (``genlab.nets.PatchGANDiscriminator``).
        optimizer: ``{"generators": ..., "discriminators": ...}`` ``torch.optim`` constructors missing only the
            parameters (Hydra ``_partial_: true``): one optimizer over both generators, one over both discriminators.
        scheduler: an LR schedule constructor missing only the optimizer (``genlab.schedules.linear_decay``), applied
            to both optimizers and stepped once per epoch; ``None``: constant lr.
        source_channels, channels: channels of A (``data.source_channels``) and of B (``data.channels``).
        lambda_cycle: weight of each cycle-consistency L1 term (the official lambda_A = lambda_B = 10).
        lambda_identity: identity weight relative to lambda_cycle (official 0.5, i.e. 5 on each identity L1 term);
            needs A and B with the same channels, since G_AB is fed B images.
        pool_size: past fakes kept per discriminator (official 50; 0: D sees only the newest fakes).
    """

    data_hint = "translation data: data=mnist_thin2thick (the embedded demo), data=unpaired data.root=DIR (CycleGAN's trainA/trainB layout) or data=paired data.root=DIR (trained as unpaired)"

    def __init__(
        self,
        generator_ab: nn.Module,
        generator_ba: nn.Module,
        discriminator_a: nn.Module,
        discriminator_b: nn.Module,
        optimizer: dict[str, OptimizerFactory],
        source_channels: int,
        channels: int,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
    ):
        super().__init__(source_channels)
        missing = set(PLAYERS) - set(optimizer or {})
        if missing:
            raise ValueError(f"model.optimizer needs 'generators' and 'discriminators' entries; missing {sorted(missing)}.")
        if lambda_cycle < 0 or lambda_identity < 0:
            raise ValueError(
                f"model.lambda_cycle and model.lambda_identity are loss weights and must be >= 0, got {lambda_cycle} "
                f"and {lambda_identity}."
            )
        if lambda_identity > 0 and source_channels != channels:
            raise ValueError(
                f"model.lambda_identity={lambda_identity} feeds B images to G_AB and A images to G_BA, which needs A "
                f"and B with the same channels, but data.source_channels={source_channels} and data.channels={channels}. "
                "Set model.lambda_identity=0 for this data (the official code also requires input_nc == output_nc)."
            )
        for key, net, ins, outs in (
            ("generator_ab", generator_ab, source_channels, channels),
            ("generator_ba", generator_ba, channels, source_channels),
            ("discriminator_a", discriminator_a, source_channels, None),
            ("discriminator_b", discriminator_b, channels, None),
        ):
            check_channels(key, net, ins, outs)
        self.automatic_optimization = False
        self.generator_ab = generator_ab
        self.generator_ba = generator_ba
        self.discriminator_a = discriminator_a
        self.discriminator_b = discriminator_b
        self.optimizer_factories = dict(optimizer)
        self.scheduler_factory = scheduler
        self.channels = channels
        self.lambda_cycle = lambda_cycle
        self.lambda_identity = lambda_identity
        self.pool_a = ImagePool(pool_size)
        self.pool_b = ImagePool(pool_size)

    # -- the sampling contract ----------------------------------------------------------------------------------------
    def translate(self, source: Tensor) -> Tensor:
        return self.generator_ab(source)

    def translation_rows(self, condition) -> dict[str, Tensor]:
        """source | translated | reconstructed (G_BA(G_AB(source))): how well the cycle closes, on held-out A."""
        rows = super().translation_rows(condition)
        return rows | {"reconstructed": self.generator_ba(rows["translated"]).clamp(-1, 1)}

    # -- optimizers ---------------------------------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizers = [
            self.optimizer_factories["generators"](chain(self.generator_ab.parameters(), self.generator_ba.parameters())),
            self.optimizer_factories["discriminators"](
                chain(self.discriminator_a.parameters(), self.discriminator_b.parameters())
            ),
        ]
        return self.scheduled(optimizers, self.scheduler_factory)

    def on_fit_start(self) -> None:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        epochs = self.trainer.max_epochs
        factor = getattr(schedulers[0], "lr_lambdas", [None])[0]
        if factor is not None and (epochs is None or epochs < 0 or factor(epochs - 1) <= 0):
            raise ValueError(
                f"trainer.max_epochs={epochs} runs past the end of the LR schedule: after model.scheduler."
                "constant_epochs + model.scheduler.decay_epochs epochs the linear decay reaches 0 and then turns "
                "negative (training backwards). Set trainer.max_epochs to at most their sum, or set them to add up to "
                "the epochs you train."
            )

    # -- training -----------------------------------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> None:
        real_a, real_b = self.source_and_target(batch)
        generators, discriminators = self.optimizers()
        with self.toggled_optimizer(generators):
            loss, logs, fake_a, fake_b = self.generator_objective(real_a, real_b)
            self.manual_step(generators, loss)
        fake_a, fake_b = self.pool_a.query(fake_a, self.rng), self.pool_b.query(fake_b, self.rng)
        with self.toggled_optimizer(discriminators):
            loss, d_logs = self.discriminator_objective(real_a, real_b, fake_a, fake_b)
            self.manual_step(discriminators, loss)
        logs |= d_logs | {"lr": torch.tensor(generators.param_groups[0]["lr"])}
        shown = ("loss/g", "loss/d")
        self.log_dict({k: v for k, v in logs.items() if k not in shown}, batch_size=len(batch))
        self.log_dict({k: logs[k] for k in shown}, prog_bar=True, batch_size=len(batch))

    def generator_objective(self, real_a: Tensor, real_b: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor, Tensor]:
        """The generators' loss (with its graph), what to log, and the detached fakes (G_BA(b), G_AB(a))."""
        fake_b = self.generator_ab(real_a)
        fake_a = self.generator_ba(real_b)
        terms = {
            "g/adversarial_ab": generator_adversarial_loss(self.discriminator_b(fake_b)),
            "g/adversarial_ba": generator_adversarial_loss(self.discriminator_a(fake_a)),
            "g/cycle_a": l1_loss(self.generator_ba(fake_b), real_a),
            "g/cycle_b": l1_loss(self.generator_ab(fake_a), real_b),
        }
        loss = terms["g/adversarial_ab"] + terms["g/adversarial_ba"]
        loss = loss + self.lambda_cycle * (terms["g/cycle_a"] + terms["g/cycle_b"])
        if self.lambda_identity > 0:
            terms["g/identity_a"] = l1_loss(self.generator_ba(real_a), real_a)
            terms["g/identity_b"] = l1_loss(self.generator_ab(real_b), real_b)
            loss = loss + self.lambda_identity * self.lambda_cycle * (terms["g/identity_a"] + terms["g/identity_b"])
        logs = {k: v.detach() for k, v in terms.items()} | {"loss/g": loss.detach()}
        return loss, logs, fake_a.detach(), fake_b.detach()

    def discriminator_objective(
        self, real_a: Tensor, real_b: Tensor, fake_a: Tensor, fake_b: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Both discriminators' halved least-squares losses, summed (each D only gets the gradient of its own)."""
        d_a = discriminator_adversarial_loss(self.discriminator_a(real_a), self.discriminator_a(fake_a))
        d_b = discriminator_adversarial_loss(self.discriminator_b(real_b), self.discriminator_b(fake_b))
        loss = d_a + d_b
        return loss, {"d/a": d_a.detach(), "d/b": d_b.detach(), "loss/d": loss.detach()}

    # -- checkpoints --------------------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[POOLS_KEY] = {"a": self.pool_a.state(), "b": self.pool_b.state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if POOLS_KEY in checkpoint:
            self.pool_a.load_state(checkpoint[POOLS_KEY]["a"])
            self.pool_b.load_state(checkpoint[POOLS_KEY]["b"])


def check_channels(key: str, net: nn.Module, in_channels: int, out_channels: int | None) -> None:
    """A net that declares its channels must declare the data's: fail at build time naming the config key."""
    ins, outs = getattr(net, "in_channels", in_channels), getattr(net, "out_channels", out_channels)
    if ins != in_channels or (out_channels is not None and outs != out_channels):
        want = f"{in_channels} -> {out_channels}" if out_channels is not None else f"{in_channels} input"
        raise ValueError(
            f"model.{key} ({type(net).__name__}) has {ins} input{f' and {outs} output' if out_channels else ''} "
            f"channels but the data needs {want} channels; wire its channels to ${{data.source_channels}} / "
            "${data.channels} as conf/model/cyclegan.yaml does."
        )
