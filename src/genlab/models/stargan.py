"""StarGAN (Choi et al. 2018, "StarGAN: Unified Generative Adversarial Networks for Multi-Domain Image-to-Image
Translation"): one generator G(x, c) translates an image into any target domain c; one discriminator scores
realness (D_src) and classifies the domain (D_cls). Training follows the official ``solver.py`` (yunjey/stargan):

per batch (real images x with their domains c'):
  * target domains c: the batch's own labels permuted (``label_org[randperm]``), drawn from the module's ``rng``;
  * D step: -E D_src(x) + E D_src(G(x, c)) + lambda_gp GP + lambda_cls L_cls(D_cls(x), c')   (Eqs. 1-2, WGAN-GP);
  * every ``n_critic``-th batch, G step: -E D_src(G(x, c)) + lambda_cls L_cls(D_cls(G(x, c)), c)
    + lambda_rec ||x - G(G(x, c), c')||_1   (Eqs. 3-4: the reconstruction keeps what the domain does not change).

L_cls is cross-entropy for one domain per image and summed binary cross-entropy for attribute vectors
(:func:`genlab.losses.domain_classification_loss`). The condition of ``sample`` is a
:class:`~genlab.data.batch.DomainTransfer` (sources + target domains), the ``"domain_transfer"`` conditioning.
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data.batch import Batch, DomainTransfer, single_domain_changes
from genlab.losses import (
    domain_classification_loss,
    gradient_penalty,
    l1_loss,
    wasserstein_discriminator_loss,
    wasserstein_generator_loss,
)
from genlab.models.base import evaluating
from genlab.models.translation import TranslationModule

OptimizerFactory = Callable[..., torch.optim.Optimizer]
PLAYERS = ("discriminator", "generator")


class StarGAN(TranslationModule):
    """Multi-domain translation with one generator (see the module notes).

    Args:
        generator: ``G(images, domain_vectors) -> images`` with ``channels`` and ``num_domains``
            (:class:`genlab.nets.StarGANGenerator`).
        discriminator: ``D(images) -> (patch scores, domain logits)`` with ``critic(images)`` and ``num_domains``
            (:class:`genlab.nets.StarGANDiscriminator`).
        optimizer: ``{"generator": ..., "discriminator": ...}`` optimizer constructors missing the parameters.
        lr_schedule: a scheduler constructor missing the optimizer (``genlab.schedules.linear_decay_by_batch``:
            StarGAN counts iterations, not epochs), built for both players; ``None``: constant lr.
        domain_names: names of the domains in label order; for attribute data, CelebA's hair colours among them are
            kept exclusive in the grid's targets (the official ``selected_attrs``). ``None``: the training data's
            ``domain_names`` (its folder names), taken when fitting starts and kept in checkpoints, so grids and
            ``eval.py mode=translate target=[...]`` name the domains.
    """

    conditioning = "domain_transfer"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer: dict[str, OptimizerFactory],
        lambda_cls: float = 1.0,
        lambda_rec: float = 10.0,
        lambda_gp: float = 10.0,
        n_critic: int = 5,
        lr_schedule: Callable | None = None,
        domain_names: Sequence[str] | None = None,
    ):
        super().__init__(source_channels=generator.channels)
        if generator.num_domains != discriminator.num_domains:
            raise ValueError(
                f"model.generator.num_domains={generator.num_domains} but model.discriminator.num_domains="
                f"{discriminator.num_domains}: G is conditioned on the domains D classifies; set both to data.num_classes."
            )
        if n_critic < 1:
            raise ValueError(f"model.n_critic must be a positive integer (G steps every n-th batch), got {n_critic}.")
        missing = set(PLAYERS) - set(optimizer or {})
        if missing:
            raise ValueError(f"model.optimizer needs both 'discriminator' and 'generator' entries; missing {sorted(missing)}.")
        if domain_names is not None and len(domain_names) != generator.num_domains:
            raise ValueError(
                f"model.domain_names names {len(domain_names)} domains ({list(domain_names)}) but the nets have "
                f"{generator.num_domains} (data.num_classes)."
            )
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.optimizer_factories = dict(optimizer)
        self.lr_schedule = lr_schedule
        self.lambda_cls = lambda_cls
        self.lambda_rec = lambda_rec
        self.lambda_gp = lambda_gp
        self.n_critic = n_critic
        self.num_domains: int = generator.num_domains
        self.domain_names = list(domain_names) if domain_names is not None else None
        self.attribute_domains = False  # CelebA-style attribute vectors rather than domain ids (set by the data)

    def on_fit_start(self) -> None:
        self.attribute_domains = bool(getattr(self.trainer.datamodule, "labels_are_attributes", False))
        names = getattr(self.trainer.datamodule, "domain_names", None)
        if self.domain_names is None and names:
            if len(names) != self.num_domains:
                raise ValueError(
                    f"the data has {len(names)} domains ({list(names)}) but the nets were built for {self.num_domains} "
                    "(data.num_classes)."
                )
            self.domain_names = list(names)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["domain_names"] = self.domain_names
        checkpoint["attribute_domains"] = self.attribute_domains

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.domain_names = checkpoint.get("domain_names", self.domain_names)
        self.attribute_domains = checkpoint.get("attribute_domains", self.attribute_domains)

    def configure_optimizers(self):
        optimizers = [
            self.optimizer_factories["discriminator"](self.discriminator.parameters()),
            self.optimizer_factories["generator"](self.generator.parameters()),
        ]
        return self.scheduled(optimizers, self.lr_schedule)

    # -- translation ---------------------------------------------------------------------------------------------------
    def domain_vectors(self, domains: Tensor) -> Tensor:
        """What G reads: one-hot vectors for domain ids (N,), the attribute vectors (N, A) themselves."""
        if domains.dim() == 1:
            return F.one_hot(domains.long(), self.num_domains).float()
        return domains.float()

    def translate(self, source: Tensor, target: Tensor | None = None) -> Tensor:
        """Sources (N, C, H, W) -> the same images in the ``target`` domains (ids (N,) or attribute vectors (N, A))."""
        if target is None:
            raise ValueError(
                "StarGAN translates into a target domain: call translate(source, target) with one target domain per "
                f"image (ids in 0..{self.num_domains - 1}, or attribute vectors of {self.num_domains} values)."
            )
        return self.generator(source, self.domain_vectors(self.check_domains(len(source), target, "target")))

    def sample(self, n: int, *, condition: DomainTransfer | None = None, generator=None) -> Tensor:
        """Translate ``condition.source`` into ``condition.target`` (a :class:`DomainTransfer` of ``n`` items).
        Deterministic: ``generator`` is accepted for the one contract and unused."""
        condition = self.check_condition(n, condition)
        with evaluating(self):
            return self.translate(condition.source, condition.target).clamp(-1, 1)

    def translation_rows(self, condition: DomainTransfer) -> dict[str, Tensor]:
        """StarGAN's figure: the sources, then one row per target domain (every domain id; for attribute vectors each
        single-attribute change of the source's own vector, as the official ``create_labels``), then ``translated``:
        the translation into the condition's own targets, the one the metrics score (and that the grid's ground-truth
        row shows exactly, where the data knows it)."""
        condition = self.check_condition(len(condition), condition)
        if condition.source_domains is None and condition.target.dim() == 2:
            raise ValueError(
                "StarGAN's attribute grid changes one attribute of each source's own vector: the DomainTransfer needs "
                "source_domains (datamodule.conditions(n, 'domain_transfer', seed) fills them)."
            )
        own = condition.target if condition.source_domains is None else condition.source_domains  # ids: only the count
        rows = {"source": condition.source}
        with evaluating(self):
            for name, target in zip(self.domain_labels, single_domain_changes(own, self.num_domains, self.domain_names)):
                rows[f"to_{name}"] = self.translate(condition.source, target).clamp(-1, 1)
            rows["translated"] = self.translate(condition.source, condition.target).clamp(-1, 1)
        return rows

    @property
    def domain_labels(self) -> list[str]:
        """The domains' names in label order: the data's (``domain_names``), or ``domain_<k>``."""
        return self.domain_names or [f"domain_{k}" for k in range(self.num_domains)]

    def check_domain_names(self, names: Sequence[str]) -> list[str]:
        """``names`` as a list, after refusing an empty list or any name that is not one of :attr:`domain_labels`."""
        valid = self.domain_labels
        unknown = [str(name) for name in names if name not in valid]
        if unknown or not names:
            raise ValueError(
                f"StarGAN: unknown target domain {', '.join(unknown) or '(none given)'}; this model's domains are "
                f"{', '.join(valid)}. Pass e.g. target=[{','.join(valid[:2])}], or target=all for every domain."
            )
        return [str(name) for name in names]

    def targets_named(self, names: Sequence[str], source: Tensor) -> dict[str, Tensor]:
        """``{name: target domains for the sources}`` for domain names, as the grid makes them (a domain id; for
        attribute vectors the source's own vector, read by D's classifier since a folder of images has no labels,
        with that attribute changed)."""
        names = self.check_domain_names(names)
        with torch.no_grad(), evaluating(self):
            own = torch.zeros(len(source), dtype=torch.long, device=self.device)  # ids: only the count matters
            if self.attribute_domains:
                own = (self.discriminator(source)[1] > 0).float()
            changes = single_domain_changes(own, self.num_domains, self.domain_names)
        return {name: changes[self.domain_labels.index(name)] for name in names}

    def check_condition(self, n: int, condition) -> DomainTransfer:
        if not isinstance(condition, DomainTransfer):
            got = "nothing" if condition is None else (
                f"a tensor of shape {tuple(condition.shape)}" if isinstance(condition, Tensor) else type(condition).__name__
            )
            raise ValueError(
                f"StarGAN translates images into target domains: call sample(n, condition=DomainTransfer(source, target)) "
                f"with n={n} source images ({n}, {self.source_channels}, H, W) in [-1, 1] and {n} target domains "
                f"(ids in 0..{self.num_domains - 1}, or attribute vectors of {self.num_domains} values); got {got}. "
                "Grids and metrics get them from the datamodule (datamodule.conditions(n, 'domain_transfer', seed))."
            )
        source = self.check_source(n, condition.source)
        target = self.check_domains(n, condition.target, "target")
        own = None if condition.source_domains is None else self.check_domains(n, condition.source_domains, "source_domains")
        return DomainTransfer(source, target, own)

    def check_domains(self, n: int, domains, what: str) -> Tensor:
        ids = isinstance(domains, Tensor) and domains.dim() == 1 and not domains.is_floating_point()
        vectors = isinstance(domains, Tensor) and domains.dim() == 2 and domains.shape[1] == self.num_domains
        in_range = not ids or not len(domains) or 0 <= int(domains.min()) <= int(domains.max()) < self.num_domains
        if not (ids or vectors) or len(domains) != n or not in_range:
            got = f"shape {tuple(domains.shape)}" if isinstance(domains, Tensor) else type(domains).__name__
            if ids and len(domains) == n:
                got = f"ids {int(domains.min())}..{int(domains.max())}"
            raise ValueError(
                f"StarGAN: {what} must be {n} domain ids in 0..{self.num_domains - 1} (int64, shape ({n},)) or {n} "
                f"attribute vectors (float 0/1, shape ({n}, {self.num_domains})), got {got}."
            )
        return domains.to(self.device)

    @torch.no_grad()
    def target_accuracy(self, condition: DomainTransfer) -> float:
        """The share of translations that D's domain classifier assigns to their target (for attribute vectors: the
        share of attributes it reads as the target's, thresholded at 0.5, as the official ``compute_accuracy``)."""
        condition = self.check_condition(len(condition), condition)
        with evaluating(self):
            _, logits = self.discriminator(self.sample(len(condition), condition=condition))
        return float(domain_accuracy(logits, condition.target))

    # -- training ------------------------------------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> None:
        real, own = batch.images, self.check_domains(len(batch), batch.labels, "the batch's labels (its domains)")
        target = own[torch.randperm(len(own), generator=self.rng).to(own.device)]
        d_opt, g_opt = self.optimizers()
        logs = self.discriminator_step(real, own, target, d_opt)
        if (batch_idx + 1) % self.n_critic == 0:
            logs |= self.generator_step(real, own, target, g_opt)
        self.log_dict(logs, prog_bar=True, batch_size=len(batch))

    def discriminator_step(self, real: Tensor, own: Tensor, target: Tensor, optimizer) -> dict[str, Tensor]:
        with torch.no_grad():
            fake = self.translate(real, target)
        with self.toggled_optimizer(optimizer):
            loss, logs = self.discriminator_objective(real, own, target, fake)
            self.manual_step(optimizer, loss)
        return logs

    def generator_step(self, real: Tensor, own: Tensor, target: Tensor, optimizer) -> dict[str, Tensor]:
        with self.toggled_optimizer(optimizer):
            loss, logs = self.generator_objective(real, own, target)
            self.manual_step(optimizer, loss)
        return logs

    def discriminator_objective(self, real: Tensor, own: Tensor, target: Tensor, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """D's loss on real images (domains ``own``) and detached translations ``fake`` (made for ``target``):
        WGAN critic loss + lambda_cls * L_cls(real) + lambda_gp * GP; and what to log."""
        real_scores, real_logits = self.discriminator(real)
        fake_scores, fake_logits = self.discriminator(fake)
        adversarial = wasserstein_discriminator_loss(real_scores, fake_scores)
        classification = domain_classification_loss(real_logits, own)
        penalty = gradient_penalty(self.discriminator.critic, real, fake, weight=self.lambda_gp)
        loss = adversarial + self.lambda_cls * classification + penalty
        return loss, {
            "loss/d": loss.detach(),
            "d/adversarial": adversarial.detach(),
            "d/classification_loss": classification.detach(),
            "penalty/gradient_penalty": penalty.detach(),
            "d/real_domain_accuracy": domain_accuracy(real_logits.detach(), own),
            "d/fake_target_accuracy": domain_accuracy(fake_logits.detach(), target),
        }

    def generator_objective(self, real: Tensor, own: Tensor, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """G's loss for translating ``real`` into ``target``: WGAN generator loss + lambda_cls * L_cls(fake, target)
        + lambda_rec * ||real - G(G(real, target), own)||_1; and what to log."""
        fake = self.translate(real, target)
        scores, logits = self.discriminator(fake)
        adversarial = wasserstein_generator_loss(scores)
        classification = domain_classification_loss(logits, target)
        reconstruction = l1_loss(self.translate(fake, own), real)
        loss = adversarial + self.lambda_cls * classification + self.lambda_rec * reconstruction
        return loss, {
            "loss/g": loss.detach(),
            "g/adversarial": adversarial.detach(),
            "g/classification_loss": classification.detach(),
            "g/reconstruction_l1": reconstruction.detach(),
        }


def domain_accuracy(logits: Tensor, domains: Tensor) -> Tensor:
    """Share of correct domain readings: argmax for ids (N,), per-attribute sigmoid > 0.5 for vectors (N, A)."""
    if domains.dim() == 1:
        return (logits.argmax(1) == domains).float().mean()
    return ((logits > 0) == (domains > 0.5)).float().mean()
