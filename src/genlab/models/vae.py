"""``VariationalModule``: the VAE scheme (Kingma & Welling 2013), conditional on labels as a switch (CVAE, Sohn et
al. 2015).

Training maximises the ELBO  E_q[log p(x | z)] - beta_t * KL(q(z | x) || N(0, I))  with the reparameterisation
z = mean + exp(log_var / 2) * eps and the closed-form Gaussian KL. ``beta_t`` ramps linearly from 0 to ``beta`` over
``kl_warmup_steps`` (Bowman et al. 2016 / Sønderby et al. 2016 warm-up), then stays at ``beta`` (beta-VAE when
``beta != 1``); the logged ``train/elbo`` always uses beta = 1 so it stays a bound.

Held-out NLL is the importance-weighted bound of Burda et al. (IWAE):
log p(x) >= log 1/k sum_i p(x | z_i) p(z_i) / q(z_i | x),  z_i ~ q(z | x),
which equals the single-sample ELBO at k = 1 and tightens as k grows (k = 5000 is the reporting standard).

Reconstruction likelihoods (``likelihood``):
- ``bernoulli``: x mapped to [0, 1]; a true likelihood for binarised data (data=mnist5k_binary).
- ``gaussian``: N(x; mean, sigma^2) per pixel on [-1, 1], with one learned log-sigma per channel. Its NLL is a
  density; ``bits_per_dim`` adds D * log(256 / 2) so it is comparable with 8-bit discrete models (bin width 2/256).
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data.batch import Batch
from genlab.models.base import GenerativeModule, LabelConditioning, evaluating

OptimizerFactory = Callable[..., torch.optim.Optimizer]
LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) summed over latent dims, one value per row."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(1)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def gaussian_log_prob(z: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    return -0.5 * ((z - mean).pow(2) / log_var.exp() + log_var + LOG_2PI).sum(-1)


class VariationalModule(LabelConditioning, GenerativeModule):
    """Args:
        encoder: (images[, labels]) -> (mean, log_var) of q(z | x), each (N, latent_dim).
        decoder: (z[, labels]) -> (N, C, H, W) Bernoulli logits or Gaussian means.
        optimizer: ``torch.optim`` constructor missing only the parameters.
        likelihood: 'bernoulli' or 'gaussian' (see module docstring).
        beta: KL weight after warm-up; kl_warmup_steps: optimizer steps of the linear 0 -> beta ramp (0: none).
        importance_samples: k of the IWAE bound that ``log_likelihood`` (held-out NLL) uses by default.
        num_classes, conditional: ``conditional=True`` is the CVAE: encoder and decoder see the label.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        optimizer: OptimizerFactory,
        likelihood: str = "bernoulli",
        beta: float = 1.0,
        kl_warmup_steps: int = 0,
        importance_samples: int = 100,
        num_classes: int = 0,
        conditional: bool = False,
        channels: int | None = None,
    ):
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"model.likelihood must be 'bernoulli' (binary/[0,1] data) or 'gaussian', got {likelihood!r}.")
        self.init_conditioning(conditional, num_classes)
        if encoder.num_classes != (num_classes if conditional else 0) or decoder.num_classes != encoder.num_classes:
            raise ValueError("encoder.num_classes and decoder.num_classes must equal model.num_classes when "
                             "model.conditional=true and 0 otherwise.")
        if importance_samples < 1:
            raise ValueError(f"model.importance_samples must be >= 1, got {importance_samples}.")
        self.encoder, self.decoder, self.optimizer = encoder, decoder, optimizer
        self.likelihood, self.beta, self.kl_warmup_steps = likelihood, beta, kl_warmup_steps
        self.importance_samples = importance_samples
        self._validation_noise = torch.Generator()  # reseeded at each validation (on_validation_epoch_start)
        self.latent_dim: int = encoder.latent_dim
        self.log_sigma = nn.Parameter(torch.full((channels or 1,), math.log(0.1))) if likelihood == "gaussian" else None

    def configure_optimizers(self):
        return self.optimizer(self.parameters())

    # -- pieces ------------------------------------------------------------------------------------------------------
    def encode(self, images: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.encoder(images, self.check_labels(labels))

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Latent codes -> mean images in [-1, 1] (the traversal callback calls this)."""
        return self._mean_image(self.decoder(z, self.check_labels(labels)))

    def _mean_image(self, out: Tensor) -> Tensor:
        return torch.sigmoid(out) * 2 - 1 if self.likelihood == "bernoulli" else out.clamp(-1, 1)

    def reconstruction_log_prob(self, out: Tensor, images: Tensor) -> Tensor:
        """log p(x | z) summed over pixels, one value per image; ``out`` from the decoder."""
        if self.likelihood == "bernoulli":
            target = (images + 1) / 2
            return -F.binary_cross_entropy_with_logits(out, target, reduction="none").flatten(1).sum(1)
        log_sigma = self.log_sigma.view(1, -1, 1, 1)
        log_p = -0.5 * ((images - out) / log_sigma.exp()).pow(2) - log_sigma - 0.5 * LOG_2PI
        return log_p.flatten(1).sum(1)

    def _noise(self, *shape: int, generator: torch.Generator | None) -> Tensor:
        return self.randn(*shape, generator=generator)

    def elbo(
        self, images: Tensor, labels: Tensor | None = None, *, analytic_kl: bool = True, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per-image ELBO terms from one z sample: ``reconstruction`` (log p(x|z)), ``kl`` and ``elbo``. With
        ``analytic_kl=False`` the KL is the single-sample estimate log q(z|x) - log p(z)."""
        labels = self.check_labels(labels)
        mean, log_var = self.encoder(images, labels)
        z = mean + (0.5 * log_var).exp() * self._noise(*mean.shape, generator=generator)
        reconstruction = self.reconstruction_log_prob(self.decoder(z, labels), images)
        if analytic_kl:
            kl = gaussian_kl(mean, log_var)
        else:
            kl = gaussian_log_prob(z, mean, log_var) - standard_normal_log_prob(z)
        return {"reconstruction": reconstruction, "kl": kl, "elbo": reconstruction - kl}

    def iwae_bound(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        importance_samples: int | None = None,
        *,
        chunk: int = 500,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The k-sample importance-weighted lower bound on log p(x) in nats, one value per image."""
        k = importance_samples or self.importance_samples
        labels = self.check_labels(labels)
        mean, log_var = self.encoder(images, labels)
        n, d = mean.shape
        log_weights = []
        for start in range(0, k, chunk):
            m = min(chunk, k - start)
            # noise drawn (m, n, d) sample-major so that the first samples equal those of smaller k and of elbo()
            eps = self._noise(m, n, d, generator=generator)
            z = mean + (0.5 * log_var).exp() * eps  # (m, n, d)
            flat_z = z.reshape(m * n, d)
            flat_labels = labels.repeat(m) if labels is not None else None
            out = self.decoder(flat_z, flat_labels)
            log_px = self.reconstruction_log_prob(out, images.repeat(m, 1, 1, 1)).view(m, n)
            log_weights.append(log_px + standard_normal_log_prob(z) - gaussian_log_prob(z, mean, log_var))
        return torch.logsumexp(torch.cat(log_weights), dim=0) - math.log(k)

    @torch.no_grad()
    def log_likelihood(
        self, images: Tensor, labels: Tensor | None = None, importance_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Held-out log p(x) estimate (IWAE bound, ``importance_samples`` or the configured k) in nats per image."""
        with evaluating(self):
            return self.iwae_bound(images.to(self.device), labels, importance_samples, generator=generator)

    def bits_per_dim(self, nll_nats: Tensor, images: Tensor) -> Tensor:
        """nats -> bits per dimension of ``images``; Gaussian densities get the 8-bit bin-width correction
        D * log(128)."""
        dims = images[0].numel()
        correction = dims * math.log(128) if self.likelihood == "gaussian" else 0.0
        return (nll_nats + correction) / (dims * math.log(2))

    def kl_weight(self) -> float:
        if self.kl_warmup_steps <= 0:
            return self.beta
        return self.beta * min(1.0, self.global_step / self.kl_warmup_steps)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        terms = self.elbo(batch.images, batch.labels)
        weight = self.kl_weight()
        loss = (-terms["reconstruction"] + weight * terms["kl"]).mean()
        self.log_dict(
            {
                "train/loss": loss.detach(),
                "train/elbo": terms["elbo"].mean().detach(),
                "train/reconstruction": terms["reconstruction"].mean().detach(),
                "train/kl": terms["kl"].mean().detach(),
                "train/kl_weight": torch.tensor(weight),
            },
            prog_bar=True,
            batch_size=len(batch),
        )
        return loss

    def on_validation_epoch_start(self) -> None:
        # the same importance-sampling noise at every validation: epochs are compared on common random numbers, and the
        # training stream (self.rng) is left alone, so a run with validation trains exactly as one without
        self._validation_noise = torch.Generator().manual_seed(0)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Held-out NLL per epoch, the IWAE bound with ``importance_samples`` (``val/nll_nats``: what early stopping
        and the best checkpoint monitor, ``callbacks=early_stopping``); averaged over images and DDP processes."""
        nll = -self.iwae_bound(batch.images, batch.labels, generator=self._validation_noise)
        self.log_dict(
            {"val/nll_nats": nll.mean(), "val/bits_per_dim": self.bits_per_dim(nll, batch.images).mean()},
            batch_size=len(batch), sync_dist=True,
        )

    # -- the sampling contract and friends ------------------------------------------------------------------------
    def sample(self, n: int, *, condition: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Decoder means of z ~ N(0, I) (the usual way to show VAE samples). CVAE: ``condition`` labels, by default
        every class in turn."""
        labels = self.sampling_labels(n, condition)
        z = self.randn(n, self.latent_dim, generator=generator)
        with evaluating(self):
            return self.decode(z, labels)

    def reconstruct(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        """Decoder mean at the posterior mean: the reconstruction grid callback calls this."""
        with evaluating(self):
            mean, _ = self.encode(images.to(self.device), labels)
            return self.decode(mean, labels)
