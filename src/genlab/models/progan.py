"""ProGAN (Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs for Improved Quality, Stability, and
Variation"): the adversarial scheme trained from 4x4 up to the data's resolution, one doubling at a time.

The schedule (Sec. 2 and App. A.1) is a pure function of the number of real images shown to the discriminator:
train 4x4 for ``stabilise_images``, then for each doubling fade the new blocks in over ``fade_images`` (alpha going
linearly 0 -> 1) and stabilise them for ``stabilise_images``; the last resolution stays. The paper shows 800k images
in each phase. The count is a buffer, so checkpoints hold it and a resumed run continues the schedule where it stopped.

Why an :class:`~genlab.models.adversarial.AdversarialModule` extension: ProGAN is the alternating WGAN-GP step
(n_critic 1) on other nets. Only what the nets see changes with the schedule: :meth:`ProGAN.generate` and
:meth:`ProGAN.discriminate` run them at the current resolution and alpha, and the real batch is brought to that
resolution and faded the same way as the generator's output (:func:`real_images_at`, the official code's
``process_reals``). Losses, the gradient penalty, the drift term and the optimizers are configs.

Also from the official code (tkarras/progressive_growing_of_gans, ``train.py``): both optimizers' Adam state is reset
when a phase begins (``reset_opt_for_new_lod``), so new layers do not start from moments of a different network.

``sample()`` keeps the one contract: images at the current resolution (and alpha), enlarged to ``image_size`` by
pixel repetition, so grids and the GIF line up while growing; after the last fade-in they are the full-size images.
The generator's output is linear, as in the paper; samples are clamped to [-1, 1], training sees them as they are.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data.batch import Batch
from genlab.models.adversarial import AdversarialModule, Latent, OptimizerFactory
from genlab.nets.progan import BASE_RESOLUTION, downsample, fade, growth_levels, upsample


@dataclass(frozen=True)
class GrowthStage:
    """Where the schedule is: ``phase`` 0 = 4x4, then 2k - 1 = fading in resolution 4 * 2^k, 2k = stabilising it."""

    phase: int
    resolution: int
    alpha: float


def growth_stage(images_seen: int, image_size: int, fade_images: int, stabilise_images: int) -> GrowthStage:
    """The stage after ``images_seen`` real images (App. A.1: 4x4 for one stabilising phase, then fade-in and
    stabilising phases alternate; the official code's ``TrainingSchedule`` counts the same way)."""
    levels = growth_levels(image_size)
    if images_seen < stabilise_images:
        return GrowthStage(0, BASE_RESOLUTION, 1.0)
    level, into_level = divmod(images_seen - stabilise_images, fade_images + stabilise_images)
    level += 1
    if level > levels:
        return GrowthStage(2 * levels, image_size, 1.0)
    resolution = BASE_RESOLUTION * 2**level
    if into_level < fade_images:
        return GrowthStage(2 * level - 1, resolution, into_level / fade_images)
    return GrowthStage(2 * level, resolution, 1.0)


def real_images_at(images: Tensor, resolution: int, alpha: float) -> Tensor:
    """Real images as the discriminator sees them at ``resolution`` and ``alpha``: average-pooled to it and, while
    fading in, blended with their own 2x coarser version exactly as the generator blends its output:
    (1 - alpha) * upsample(downsample(x_r)) + alpha * x_r."""
    x = F.adaptive_avg_pool2d(images, resolution) if images.shape[-1] != resolution else images
    if alpha >= 1 or resolution == BASE_RESOLUTION:
        return x
    return fade(upsample(downsample(x)), x, alpha)


class ProGAN(AdversarialModule):
    """The adversarial scheme on progressively grown nets.

    Args:
        generator, discriminator: :class:`genlab.nets.ProGANGenerator` / :class:`genlab.nets.ProGANDiscriminator`
            (or nets with the same ``resolution`` / ``alpha`` arguments) of one ``image_size``.
        optimizer, loss: as :class:`AdversarialModule` (the preset: Adam 1e-3, betas (0, 0.99); WGAN-GP with drift).
        fade_images: real images over which alpha rises from 0 to 1 for each new resolution (paper: 800k).
        stabilise_images: real images trained at 4x4 first, and at each resolution after its fade-in (paper: 800k).
        **kwargs: the other :class:`AdversarialModule` switches (penalties, n_critic, generator_ema, ...).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer: dict[str, OptimizerFactory],
        loss: dict[str, Callable[..., Tensor]],
        fade_images: int = 800_000,
        stabilise_images: int = 800_000,
        **kwargs,
    ):
        for key, value in (("fade_images", fade_images), ("stabilise_images", stabilise_images)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"model.{key} is a phase length in real images and must be a positive integer, got {value!r}.")
        if generator.image_size != discriminator.image_size:
            raise ValueError(
                f"model.generator.image_size={generator.image_size} but model.discriminator.image_size="
                f"{discriminator.image_size}: both nets grow to the data's resolution (${{data.image_size}})."
            )
        super().__init__(generator, discriminator, optimizer, loss, **kwargs)
        self.image_size = generator.image_size
        self.fade_images, self.stabilise_images = fade_images, stabilise_images
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("phase", torch.zeros((), dtype=torch.long))  # the phase of the last batch trained

    @property
    def stage(self) -> GrowthStage:
        return growth_stage(int(self.images_seen), self.image_size, self.fade_images, self.stabilise_images)

    # -- the nets at the current stage -----------------------------------------------------------------------------
    def generate(self, latent: Latent, net: nn.Module | None = None) -> Tensor:
        stage = self.stage
        return (net or self.generator)(latent.z, resolution=stage.resolution, alpha=stage.alpha)

    def discriminate(self, samples: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.discriminator(samples, alpha=self.stage.alpha)

    # -- training ----------------------------------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> None:
        stage = self.stage
        if stage.phase != int(self.phase):
            for optimizer in self.optimizers():
                optimizer.optimizer.state.clear()
            self.phase.fill_(stage.phase)
        self.log_dict(
            {"progan/alpha": stage.alpha, "progan/resolution": float(stage.resolution)}, batch_size=len(batch)
        )
        super().training_step(replace(batch, images=real_images_at(batch.images, stage.resolution, stage.alpha)), batch_idx)
        self.images_seen += len(batch) * self.trainer.world_size

    # -- the sampling contract ---------------------------------------------------------------------------------------
    def sample(self, n: int, *, condition: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        return self._full_size(super().sample(n, condition=condition, generator=generator))

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self._full_size(super().decode(z, labels))

    def _full_size(self, images: Tensor) -> Tensor:
        """Current-resolution images enlarged to ``image_size`` by pixel repetition, clamped to [-1, 1]."""
        if images.shape[-1] != self.image_size:
            images = F.interpolate(images, size=self.image_size, mode="nearest")
        return images.clamp(-1, 1)
