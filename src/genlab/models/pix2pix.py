"""pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks"): a conditional GAN
on paired data. G translates a source x into G(x); a conditional PatchGAN D judges the pair [x, y] (real) against
[x, G(x)] (fake), so G must produce an output that fits *its* input, and an L1 term to the true y carries the low
frequencies (Eq. 4: G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G)).

Per batch, as the official ``models/pix2pix_model.py`` (junyanz/pytorch-CycleGAN-and-pix2pix), ``optimize_parameters``:
  1. fake = G(x) once, with G in training mode (dropout on: pix2pix's only noise);
  2. D step: 0.5 * [BCE(D([x, y]), 1) + BCE(D([x, fake.detach()]), 0)], halved "to slow down the rate at which D
     learns relative to G" (Sec. 3.3);
  3. G step on the same fake: BCE(D([x, fake]), 1) + lambda_L1 * |fake - y|_1, with D's weights frozen.
The losses are the existing pure functions (mean over every patch score, so any PatchGAN map size works).

Data must be paired (``datamodule.pairing == "paired"``: ``images`` is the ground-truth translation of ``source``);
an unpaired batch's ``images`` is an unrelated target-domain image, and the L1 term would then teach G to blur
towards the mean of the target domain, so such data is refused when fitting starts.
"""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from genlab.data.batch import Batch
from genlab.losses import l1_loss, plain
from genlab.models.translation import TranslationModule

OptimizerFactory = Callable[..., torch.optim.Optimizer]
PLAYERS = ("discriminator", "generator")


def patch_layers(image_size: int) -> int:
    """PatchGAN depth for an image size: 3 (the 70x70 PatchGAN, 27 % of a 256-px image) from 128 px, 2 (34x34) at
    64 px, 1 (16x16) below. At 32 px, 2 layers would see 34x34, more than the whole image: the full-image D that
    the paper's Table 3 found worse than patches; 1 layer judges half-digit patches."""
    return 3 if image_size >= 128 else 2 if image_size >= 64 else 1


class Pix2Pix(TranslationModule):
    """Paired translation with a conditional PatchGAN (see the module notes).

    Args:
        generator: a translator ``G(source) -> target`` with ``in_channels`` = ``source_channels`` and
            ``out_channels`` (:class:`genlab.nets.UnetGenerator`).
        discriminator: a constructor missing only ``in_channels`` (Hydra ``_partial_: true``), called with
            ``source_channels + generator.out_channels``: D reads source and target concatenated
            (:class:`genlab.nets.patchgan.PatchGANDiscriminator`).
        optimizer: ``{"generator": ..., "discriminator": ...}`` optimizer constructors missing the parameters.
        loss: ``{"discriminator": f(real_logits, fake_logits), "generator": f(fake_logits)}`` from ``genlab.losses``
            (pix2pix: ``gan_mode='vanilla'``, binary cross-entropy / non-saturating).
        source_channels: channels of a source image (``data.source_channels``).
        lambda_l1: weight of the L1 term (the official ``lambda_L1``, 100).
        scheduler: an LR schedule constructor missing the optimizer (``genlab.schedules.linear_decay``), built for
            both players and stepped once per epoch; ``None``: constant lr.
    """

    data_hint = "paired translation data: data=mnist_edges2digits, mnist_colorize or data=paired data.root=DIR"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: Callable[..., nn.Module],
        optimizer: dict[str, OptimizerFactory],
        loss: dict[str, Callable[..., Tensor]],
        source_channels: int,
        lambda_l1: float = 100.0,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
    ):
        super().__init__(source_channels)
        for name, entries in (("loss", loss), ("optimizer", optimizer)):
            missing = set(PLAYERS) - set(entries or {})
            if missing:
                raise ValueError(f"model.{name} needs both 'discriminator' and 'generator' entries; missing {sorted(missing)}.")
        if lambda_l1 < 0:
            raise ValueError(f"model.lambda_l1 is a loss weight and must be >= 0, got {lambda_l1}.")
        ins = getattr(generator, "in_channels", None)
        if ins != source_channels or not isinstance(getattr(generator, "out_channels", None), int):
            raise ValueError(
                f"model.generator ({type(generator).__name__}) must map {source_channels}-channel sources "
                f"(data.source_channels) to images and declare in_channels/out_channels; it has in_channels={ins}. "
                "Wire it to ${data.source_channels} -> ${data.channels} as conf/model/pix2pix.yaml does."
            )
        if isinstance(discriminator, nn.Module):
            raise TypeError(
                "model.discriminator must be a constructor missing in_channels (Hydra _partial_: true), not a built "
                "net: pix2pix's D reads source and target concatenated, so the model sets in_channels = "
                "source_channels + channels."
            )
        self.automatic_optimization = False
        self.generator = generator
        self.channels: int = generator.out_channels
        self.discriminator = discriminator(in_channels=source_channels + self.channels)
        self.optimizer_factories = dict(optimizer)
        self.discriminator_loss = plain(loss["discriminator"])
        self.generator_loss = plain(loss["generator"])
        self.lambda_l1 = float(lambda_l1)
        self.scheduler_factory = scheduler

    # -- the sampling contract ----------------------------------------------------------------------------------------
    def translate(self, source: Tensor) -> Tensor:
        return self.generator(source)

    # -- optimizers and the LR schedule -------------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizers = [
            self.optimizer_factories["discriminator"](self.discriminator.parameters()),
            self.optimizer_factories["generator"](self.generator.parameters()),
        ]
        return self.scheduled(optimizers, self.scheduler_factory)

    def setup(self, stage: str) -> None:
        # before the callbacks' on_fit_start (sample metrics compute reference features there): fail first
        if stage != "fit" or self.trainer.datamodule is None:
            return
        pairing = getattr(self.trainer.datamodule, "pairing", None)
        if pairing != "paired":
            data = type(self.trainer.datamodule).__name__
            raise ValueError(
                f"pix2pix learns from pairs (source, its true translation), but the data ({data}, pairing={pairing!r}) "
                "is not paired: its images are not the translations of its sources, so the L1 term would be "
                "meaningless. Use paired data (data=mnist_edges2digits, data=mnist_colorize, or data=paired "
                "data.root=DIR in pix2pix's A|B layout), or model=cyclegan for unpaired data."
            )

    # -- training -----------------------------------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> None:
        source, target = self.source_and_target(batch)
        d_opt, g_opt = self.optimizers()
        fake = self.generator(source)
        with self.toggled_optimizer(d_opt):
            loss, logs = self.discriminator_objective(source, target, fake.detach())
            self.manual_step(d_opt, loss)
        with self.toggled_optimizer(g_opt):
            loss, g_logs = self.generator_objective(source, target, fake)
            self.manual_step(g_opt, loss)
        self.log_dict(logs | g_logs | {"lr": torch.tensor(g_opt.param_groups[0]["lr"])}, prog_bar=True, batch_size=len(batch))

    def discriminator_objective(self, source: Tensor, target: Tensor, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Half the GAN loss of D on the real pair [x, y] and the fake pair [x, G(x)] (two passes, as the official
        code: BatchNorm sees real and fake batches separately)."""
        real_scores = self.discriminator(torch.cat([source, target], 1))
        fake_scores = self.discriminator(torch.cat([source, fake], 1))
        loss = 0.5 * self.discriminator_loss(real_scores, fake_scores)
        logs = {"d/real_score": real_scores.detach().mean(), "d/fake_score": fake_scores.detach().mean()}
        return loss, logs | {"loss/d": loss.detach()}

    def generator_objective(self, source: Tensor, target: Tensor, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """GAN loss of the fake pair + lambda_L1 * L1(G(x), y)."""
        adversarial = self.generator_loss(self.discriminator(torch.cat([source, fake], 1)))
        l1 = l1_loss(fake, target)
        loss = adversarial + self.lambda_l1 * l1
        return loss, {"g/adversarial": adversarial.detach(), "g/l1": l1.detach(), "loss/g": loss.detach()}
