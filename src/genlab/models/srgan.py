"""Super-resolution schemes (Ledig et al. 2017): SRResNet (content loss only) and SRGAN (content + adversarial).

Both are translators (:class:`~genlab.models.translation.TranslationModule`): the condition of ``sample(n,
condition=lr)`` is the low-resolution image, and the grids show bicubic | SR | HR rows. The paper's recipe is two
runs, two commands:

1. ``python train.py model=srresnet``: the generator alone on the MSE content loss (the paper: 1e6 updates, Adam 1e-4);
2. ``python train.py model=srgan model.generator_weights=<run 1>/checkpoints/last.ckpt``: SRGAN initialised from it
   (the paper: 1e5 updates at 1e-4, 1e5 at 1e-5), content loss + 1e-3 x adversarial loss.

``model.pretraining_batches=N`` puts phase 1 inside the SRGAN run instead: its first N batches train the generator
on the content loss alone, as SRResNet does. The embedded demo uses it (conf/demo/srgan_mnist5k_sr.yaml), so
``python train.py model=srgan`` alone follows the paper's recipe.

``generator_weights`` is read when fitting starts, not when the model is built, so ``eval.py`` and resumed runs
(``ckpt_path=``) never need the file again.
"""

import logging
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.checkpoints import load_checkpoint
from genlab.data.batch import Batch
from genlab.data.super_resolution import bicubic_upsample
from genlab.losses import plain
from genlab.models.translation import TranslationModule
from genlab.nets.vgg import VGGFeatures

log = logging.getLogger(__name__)
OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


class VGGContentLoss:
    """Ledig et al. 2017, Eq. 5: MSE between VGG19 feature maps ``phi_{i,j}`` of the SR and HR images, the maps
    rescaled by ``feature_scale`` (the paper: 1/12.75, making the loss comparable to the pixel MSE). VGG54 is the
    paper's SRGAN loss. Not an ``nn.Module`` on purpose: the frozen VGG (80 MB) stays out of the model's parameters
    and checkpoints; it follows the images' device."""

    def __init__(self, weights: str | Path | None = None, layer: str = "54", feature_scale: float = 1 / 12.75):
        self.features = VGGFeatures(weights, layer)
        self.feature_scale = feature_scale

    def __call__(self, output: Tensor, target: Tensor) -> Tensor:
        self.features.to(output.device)
        with torch.no_grad():
            target_features = self.features(target) * self.feature_scale
        return F.mse_loss(self.features(output) * self.feature_scale, target_features)


def mse_content_loss(output: Tensor, target: Tensor) -> Tensor:
    """Ledig et al. 2017, Eq. 4: the pixel-wise MSE on the [-1, 1] HR scale (SRResNet's loss)."""
    return F.mse_loss(output, target)


class SuperResolutionModule(TranslationModule):
    """SRResNet training: ``generator`` (LR -> SR) minimises ``content_loss(SR, HR)``.

    Args:
        generator: a net mapping (N, C, h, w) LR images to (N, C, h * scale, w * scale) (``genlab.nets.SRResNet``).
        optimizer: ``{"generator": torch.optim constructor}`` (Hydra ``_partial_: true``).
        source_channels: channels of the LR images (``data.channels``).
        content_loss: ``f(sr, hr) -> loss``: :func:`mse_content_loss` (default) or :class:`VGGContentLoss`.
        scheduler: an optional LR scheduler constructor applied to every optimizer, stepped once per batch.
        generator_weights: a genlab checkpoint (``.ckpt``) of an SR run whose generator initialises this one.
    """

    players: tuple[str, ...] = ("generator",)  # the nets (attributes of that name) with an optimizer each, in this order

    def __init__(
        self,
        generator: nn.Module,
        optimizer: dict[str, OptimizerFactory],
        source_channels: int,
        content_loss: Callable[[Tensor, Tensor], Tensor] = mse_content_loss,
        scheduler: SchedulerFactory | None = None,
        generator_weights: str | Path | None = None,
    ):
        super().__init__(source_channels)
        missing = set(self.players) - set(optimizer or {})
        if missing:
            raise ValueError(f"model.optimizer needs entries for {sorted(self.players)}; missing {sorted(missing)}.")
        self.generator = generator
        self.optimizer_factories = dict(optimizer)
        self.content_loss = plain(content_loss)
        self.scheduler_factory = scheduler
        self.generator_weights = generator_weights

    # -- the translation contract --------------------------------------------------------------------------------------
    def translate(self, source: Tensor) -> Tensor:
        return self.generator(source)

    def translation_rows(self, condition) -> dict[str, Tensor]:
        """bicubic | SR | HR: the LR sources upsampled bicubically (the ``source`` row, at the output size), their
        super-resolution, and the HR originals when the attached datamodule knows them (held-out conditions)."""
        source = self.check_source(len(condition), condition)
        output = self.translate(source).clamp(-1, 1)
        rows = {"source": bicubic_upsample(source, tuple(output.shape[-2:])), "super_resolved": output}
        lookup = getattr(getattr(self._trainer, "datamodule", None), "high_resolution_of", None)
        if callable(lookup):
            rows["high_resolution"] = lookup(source)
        return rows

    # -- training ------------------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if stage != "fit":
            return
        scale = getattr(self.trainer.datamodule, "scale_factor", None)
        if scale is None:
            raise ValueError(
                f"{type(self).__name__} learns LR -> HR and needs super-resolution data, whose batches carry the LR "
                f"images as source; {type(self.trainer.datamodule).__name__} has none. Pick it with data=: "
                "python train.py model=srresnet data=mnist5k_sr (the demo) or data=sr_folder data.high_resolution.root=DIR."
            )
        if getattr(self.generator, "scale_factor", scale) != scale:
            raise ValueError(
                f"model.generator.scale_factor={self.generator.scale_factor} but data.scale_factor={scale}: set both to "
                "the same factor (the presets read the generator's from data.scale_factor)."
            )
        if self.generator_weights is not None and not self.trainer.ckpt_path:
            self.generator.load_state_dict(generator_state(self.generator_weights, self.generator))

    def configure_optimizers(self):
        optimizers = [self.optimizer_factories[name](getattr(self, name).parameters()) for name in self.players]
        if self.scheduler_factory is None:
            return optimizers
        schedulers = [{"scheduler": self.scheduler_factory(opt), "interval": "step"} for opt in optimizers]
        return optimizers, schedulers

    def super_resolve(self, batch: Batch) -> Tensor:
        """SR images of the batch's LR sources, checked against the HR images' shape."""
        output = self.translate(batch.source)
        if output.shape != batch.images.shape:
            raise ValueError(
                f"the generator turns LR {tuple(batch.source.shape[1:])} into {tuple(output.shape[1:])}, but the HR "
                f"images are {tuple(batch.images.shape[1:])}: model.generator needs out_channels = data.channels and "
                "scale_factor = data.scale_factor."
            )
        return output

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss = self.content_loss(self.super_resolve(batch), batch.images)
        self.log_dict({"loss/content": loss.detach(), "loss/g": loss.detach()}, prog_bar=True, batch_size=len(batch))
        return loss


class SuperResolutionGAN(SuperResolutionModule):
    """SRGAN: per batch one SR pass, then a discriminator step on HR vs (detached) SR and a generator step on
    ``content_loss + adversarial_weight * loss["generator"](D(SR))`` (Ledig et al. 2017, Eq. 3 and 6; the paper's
    weight 1e-3 with -log D(G(x)), the non-saturating loss). Manual optimization, each step with its optimizer toggled.

    Args (beyond :class:`SuperResolutionModule`'s):
        discriminator: HR images -> one logit per image (``genlab.nets.SRGANDiscriminator``).
        loss: ``{"discriminator": f(real, fake), "generator": f(fake)}`` from ``genlab.losses``.
        adversarial_weight: weight of the generator's adversarial loss against the content loss.
        pretraining_batches: the first this many batches of the run train the generator on the content loss alone
            (the SRResNet phase, Sec. 3.2) and leave the discriminator alone. Counted in the trainer's batches, which
            a resumed run restores; the LR schedule counts the same batches (``GenerativeModule`` brings per-step
            schedules to the batch count before each batch).
    """

    players = ("discriminator", "generator")

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer: dict[str, OptimizerFactory],
        loss: dict[str, Callable[..., Tensor]],
        source_channels: int,
        content_loss: Callable[[Tensor, Tensor], Tensor] = mse_content_loss,
        adversarial_weight: float = 1e-3,
        scheduler: SchedulerFactory | None = None,
        generator_weights: str | Path | None = None,
        pretraining_batches: int = 0,
    ):
        super().__init__(generator, optimizer, source_channels, content_loss, scheduler, generator_weights)
        missing = set(self.players) - set(loss or {})
        if missing:
            raise ValueError(f"model.loss needs 'discriminator' and 'generator' entries; missing {sorted(missing)}.")
        if adversarial_weight < 0:
            raise ValueError(f"model.adversarial_weight is a loss weight and must be >= 0, got {adversarial_weight}.")
        if pretraining_batches < 0:
            raise ValueError(f"model.pretraining_batches counts content-loss-only batches and must be >= 0, got {pretraining_batches}.")
        self.automatic_optimization = False
        self.discriminator = discriminator
        self.discriminator_loss = plain(loss["discriminator"])
        self.generator_loss = plain(loss["generator"])
        self.adversarial_weight = adversarial_weight
        self.pretraining_batches = pretraining_batches

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and self.generator_weights is None and self.pretraining_batches == 0:
            log.warning(
                "model.generator_weights is null and model.pretraining_batches is 0: SRGAN starts from a random "
                "generator. The paper starts from a trained SRResNet: python train.py model=srresnet, then python "
                "train.py model=srgan model.generator_weights=<that run>/checkpoints/last.ckpt; or pretrain inside this "
                "run with model.pretraining_batches=N."
            )

    def pretraining(self) -> bool:
        """Whether this batch belongs to the content-loss-only phase (``total_batch_idx`` is this batch's index)."""
        return self.trainer.fit_loop.epoch_loop.total_batch_idx < self.pretraining_batches

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        d_opt, g_opt = self.optimizers()
        output = self.super_resolve(batch)
        if self.pretraining():
            with self.toggled_optimizer(g_opt):
                content = self.content_loss(output, batch.images)
                self.manual_step(g_opt, content)
            self.log_dict({"loss/content": content.detach(), "loss/g": content.detach()}, prog_bar=True, batch_size=len(batch))
            return
        with self.toggled_optimizer(d_opt):
            real, fake = self.discriminator(batch.images), self.discriminator(output.detach())
            d_loss = self.discriminator_loss(real, fake)
            self.manual_step(d_opt, d_loss)
        with self.toggled_optimizer(g_opt):
            content = self.content_loss(output, batch.images)
            adversarial = self.generator_loss(self.discriminator(output))
            g_loss = content + self.adversarial_weight * adversarial
            self.manual_step(g_opt, g_loss)
        logs = {"loss/d": d_loss, "loss/g": g_loss, "loss/content": content, "loss/adversarial": adversarial}
        logs |= {"d/real_score": real.mean(), "d/fake_score": fake.mean()}
        self.log_dict({k: v.detach() for k, v in logs.items()}, prog_bar=True, batch_size=len(batch))


def generator_state(path: str | Path, generator: nn.Module) -> dict[str, Tensor]:
    """The ``generator.*`` weights of a genlab SR checkpoint (read with ``weights_only=True``), checked to fit."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"model.generator_weights={path}: no such checkpoint. Point it at the SRResNet run's "
            "outputs/runs/<run>/checkpoints/last.ckpt (python train.py model=srresnet writes it)."
        )
    state = {k.removeprefix("generator."): v for k, v in load_checkpoint(path)["state_dict"].items() if k.startswith("generator.")}
    expected = generator.state_dict()
    wrong = [k for k in expected if k not in state or state[k].shape != expected[k].shape]
    if not state or wrong:
        raise ValueError(
            f"model.generator_weights={path} does not hold this generator's weights ({len(wrong)} of {len(expected)} "
            f"tensors missing or shaped differently{', first: generator.' + wrong[0] if wrong else ''}): it must come "
            "from an srresnet/srgan run with the same model.generator settings (width, blocks, scale_factor, channels)."
        )
    return state
