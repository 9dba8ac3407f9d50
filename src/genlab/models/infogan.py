"""InfoGAN (Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by Information Maximizing GANs"):
the adversarial scheme plus a term that makes part of the generator's input, the *latent codes*, readable from its
output. Without labels, the categorical code tends to pick up the digit class and the continuous codes rotation and
width (the paper's Fig. 2).

The generator's input is [noise, one-hot categorical code, continuous codes]. A Q head on the discriminator's trunk
(:class:`genlab.nets.infogan.CodeDiscriminator`) predicts the codes of each fake, and both G and D/Q minimise
lambda * (cross-entropy of the categorical code + Gaussian NLL of the continuous codes), the negative of the
variational lower bound L_I on I(codes; G(noise, codes)) (Eq. 5) up to the constant code entropy.

It extends :class:`~genlab.models.adversarial.AdversarialModule` through its hooks: :meth:`InfoGAN.draw_latent`
draws the codes (a :class:`CodedLatent`), and the two objectives add the information term to whatever the
adversarial ones compute (loss, penalties, feature matching, historical averaging all compose). The price of reusing
them: Q reads the fakes' features in a trunk pass of its own.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data.batch import Batch
from genlab.losses import categorical_code_loss, gaussian_code_loss
from genlab.models.adversarial import AdversarialModule, Latent
from genlab.models.base import evaluating
from genlab.nets.infogan import CodeDiscriminator, CodeHead, feature_size


@dataclass
class CodedLatent(Latent):
    """``z`` is the whole generator input [noise, one-hot(categorical), continuous]; the codes are kept apart as the
    targets of Q."""

    categorical: Tensor | None = None  # (N,) int64 in 0..categories-1
    continuous: Tensor | None = None  # (N, continuous_codes), uniform in [-1, 1] when drawn


class InfoGAN(AdversarialModule):
    """The adversarial scheme with InfoGAN's latent codes and information term.

    Args:
        code_head: builds Q from ``(in_features, categories, continuous_codes)`` (Hydra ``_partial_: true``
            :class:`~genlab.nets.infogan.CodeHead`); the feature width is read off the discriminator.
        categories: values of the one categorical code (10 for MNIST).
        continuous_codes: continuous codes, each uniform in [-1, 1] (2 for MNIST).
        information_weight: lambda, the weight of the information term for G and for D/Q (the paper: 1).
        **kwargs: everything :class:`AdversarialModule` takes; ``generator.latent_dim`` is the whole input, noise
            plus codes (62 + 10 + 2 = 74 in the paper's MNIST run).

    ``conditioning`` is ``None``: the categorical code is unsupervised, its value k need not be digit k, so grids and
    metrics must not feed it data labels as if it were a class (a "conditional accuracy" of InfoGAN would measure an
    arbitrary permutation). ``sample(n, condition=codes)`` still fixes the categorical code when asked directly;
    :meth:`sweep_code` draws the paper's code grids and :meth:`categorical_code` reads the code of real images.
    """

    refuses_label_conditioning = "its categorical code is learnt without labels (condition= fixes the code, not a digit class)"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        code_head: Callable[..., CodeHead],
        categories: int = 10,
        continuous_codes: int = 2,
        information_weight: float = 1.0,
        **kwargs,
    ):
        if categories < 2 or continuous_codes < 0:
            raise ValueError(
                f"InfoGAN needs model.categories >= 2 and model.continuous_codes >= 0, got {categories} and "
                f"{continuous_codes}."
            )
        noise_dim = generator.latent_dim - categories - continuous_codes
        if noise_dim < 1:
            raise ValueError(
                f"model.generator.latent_dim={generator.latent_dim} must hold the noise and the codes "
                f"({categories} categorical + {continuous_codes} continuous): set it to noise + "
                f"{categories + continuous_codes} (the paper: 62 + 12 = 74)."
            )
        if information_weight < 0:
            raise ValueError(f"model.information_weight is lambda and must be >= 0, got {information_weight}.")
        if getattr(discriminator, "pack", 1) > 1:
            raise ValueError(
                f"InfoGAN's Q head predicts the codes of each sample, but model.discriminator.pack={discriminator.pack} "
                "judges packs of samples (PacGAN); leave model.discriminator.pack at 1 for InfoGAN."
            )
        head = code_head(in_features=feature_size(generator, discriminator), categories=categories,
                                   continuous_codes=continuous_codes)
        super().__init__(generator=generator, discriminator=CodeDiscriminator(discriminator, head), **kwargs)
        self.categories = categories
        self.continuous_codes = continuous_codes
        self.noise_dim = noise_dim
        self.information_weight = information_weight

    # -- latents ------------------------------------------------------------------------------------------------------
    def draw_latent(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> CodedLatent:
        """Noise and codes from the prior; the data's ``labels`` are ignored (the codes are unsupervised)."""
        return self.coded_latent(n, generator=generator)

    def coded_latent(
        self,
        n: int,
        noise: Tensor | None = None,
        categorical: Tensor | None = None,
        continuous: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> CodedLatent:
        """A latent from the given parts; what is not given is drawn from the prior (noise, then the categorical,
        then the continuous codes, from ``generator`` or the module's stream, so a seed fixes every draw)."""
        rng = generator or self.rng
        if noise is None:
            noise = torch.randn(n, self.noise_dim, generator=rng)
        if categorical is None:
            categorical = torch.randint(self.categories, (n,), generator=rng)
        if continuous is None:
            continuous = torch.rand(n, self.continuous_codes, generator=rng) * 2 - 1
        noise, continuous = noise.to(self.device, torch.float32), continuous.to(self.device, torch.float32)
        categorical = categorical.to(self.device, torch.long)
        z = torch.cat([noise, F.one_hot(categorical, self.categories).float(), continuous], dim=1)
        return CodedLatent(z, categorical=categorical, continuous=continuous)

    # -- the sampling contract and the code capabilities -------------------------------------------------------------
    def sample(self, n: int, *, condition: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """``n`` fakes; ``condition`` (N,) integers in 0..categories-1 fixes the categorical code of each."""
        return self._decode(self.coded_latent(n, categorical=self.check_code(n, condition), generator=generator))

    def sweep_code(self, index: int, values: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The paper's Fig. 2 layout, row-major: one row per categorical code value, one column per value of
        continuous code ``index``; one noise vector for the whole grid, the other continuous codes at 0.
        Returns (categories * len(values), C, H, W)."""
        if not 0 <= index < self.continuous_codes:
            raise ValueError(f"continuous code {index} does not exist: InfoGAN has codes 0..{self.continuous_codes - 1}.")
        rows, columns = self.categories, len(values)
        noise = torch.randn(1, self.noise_dim, generator=generator or self.rng).expand(rows * columns, -1)
        continuous = torch.zeros(rows, columns, self.continuous_codes)
        continuous[:, :, index] = values.float()[None, :]
        categorical = torch.arange(rows).repeat_interleave(columns)
        return self._decode(self.coded_latent(rows * columns, noise, categorical, continuous.view(rows * columns, -1)))

    @torch.no_grad()
    def categorical_code(self, images: Tensor) -> Tensor:
        """Q's most likely categorical code (N,) for each image: the code as a clusterer of real data."""
        with evaluating(self.discriminator):
            logits, _, _ = self.discriminator.codes(images.to(self.device))
        return logits.argmax(1)

    def check_code(self, n: int, condition: Tensor | None) -> Tensor | None:
        if condition is None:
            return None
        if (
            not isinstance(condition, Tensor)
            or condition.shape != (n,)
            or condition.is_floating_point()
            or condition.dtype == torch.bool
            or (n and (int(condition.min()) < 0 or int(condition.max()) >= self.categories))
        ):
            got = type(condition).__name__
            if isinstance(condition, Tensor):
                got = f"shape {tuple(condition.shape)}, dtype {condition.dtype}"
            raise ValueError(
                f"InfoGAN.sample(n={n}, condition=...) fixes the categorical code: pass {n} integers in "
                f"0..{self.categories - 1} (shape ({n},)), got {got}."
            )
        return condition

    def _decode(self, latent: CodedLatent) -> Tensor:
        net = self.sampling_net
        with evaluating(net):
            return self.generate(latent, net)

    # -- training -----------------------------------------------------------------------------------------------------
    def discriminator_objective(self, batch: Batch, fake: Tensor, latent: CodedLatent) -> tuple[Tensor, dict[str, Tensor]]:
        loss, logs = super().discriminator_objective(batch, fake, latent)
        information, info_logs = self.information_loss(fake, latent)
        loss = loss + self.information_weight * information
        return loss, logs | info_logs | {"loss/d": loss.detach()}

    def generator_objective(self, batch: Batch, fake: Tensor, latent: CodedLatent) -> tuple[Tensor, dict[str, Tensor]]:
        loss, logs = super().generator_objective(batch, fake, latent)
        information, info_logs = self.information_loss(fake, latent)
        loss = loss + self.information_weight * information
        return loss, logs | info_logs | {"loss/g": loss.detach()}

    def information_loss(self, fake: Tensor, latent: CodedLatent) -> tuple[Tensor, dict[str, Tensor]]:
        """-L_I + H(c): Q's cross-entropy on the categorical code plus its Gaussian NLL on the continuous codes."""
        logits, mean, log_std = self.discriminator.codes(fake)
        categorical = categorical_code_loss(logits, latent.categorical)
        loss, logs = categorical, {"info/categorical_ce": categorical.detach()}
        if self.continuous_codes:
            continuous = gaussian_code_loss(mean, log_std, latent.continuous)
            loss, logs = loss + continuous, logs | {"info/continuous_nll": continuous.detach()}
        return loss, logs
