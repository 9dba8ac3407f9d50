"""``AdversarialModule``: the alternating two-player scheme shared by GAN, DCGAN, WGAN, WGAN-GP, LSGAN, hinge GAN.

Manual optimization (``automatic_optimization = False``), per step:
  1. one discriminator step on a real batch and a detached fake batch (loss + penalties, then weight clipping);
  2. every ``n_critic``-th step, one generator step on a fresh fake batch (``reuse_fakes``: on the fakes of step 1).
Each step toggles its own optimizer, so the other player's parameters get no gradient and stay unchanged. A loader
batch is one step, or ``steps_per_batch`` steps on as many equal slices of it: for models whose step costs about
as much as Lightning's per-batch work (the 2-D toy MLPs), that work is then paid once per ``steps_per_batch`` steps.

Variants differ only in what they pass in: losses and penalties (``genlab.losses``), optimizers, nets, and the
training tricks below, each a constructor argument with an "off" default, so any of them composes with any preset.

Class conditioning is a property of the nets, not a subclass: nets built with ``num_classes > 0`` (the
``model/conditioning`` config group sets it) make the module conditional (``conditioning = "labels"``): the fakes
are made for the real batch's labels, the discriminator reads them (input maps, projection head) or classifies
(ACGAN's auxiliary head, weighted by ``auxiliary_weight``), and ``sample(n, condition=labels)`` honours them.

Schemes that extend it (InfoGAN, the semi-supervised GAN) override the four hooks, not the steps:
  * :meth:`AdversarialModule.draw_latent` -- the one place noise is drawn, returning a :class:`Latent`;
  * :meth:`AdversarialModule.generate` -- latent -> samples;
  * :meth:`AdversarialModule.discriminate` -- samples (+ labels) -> scores; penalties see it with the labels bound;
  * :meth:`AdversarialModule.discriminator_objective` / :meth:`AdversarialModule.generator_objective` -- they get
    the real :class:`~genlab.data.batch.Batch` and the fakes together with the latent that made them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from functools import partial

import torch
from torch import Tensor, nn

from genlab.data.batch import Batch
from genlab.losses import (
    auxiliary_classifier_discriminator_loss,
    auxiliary_classifier_generator_loss,
    feature_matching_loss,
    plain,
)
from genlab.models.averaging import ParameterAverage
from genlab.models.base import GenerativeModule, LabelConditioning, evaluating, reject_condition
from genlab.models.standing_statistics import check_standing_statistics, measure_standing_statistics

OptimizerFactory = Callable[..., torch.optim.Optimizer]
Critic = Callable[[Tensor], Tensor]
Penalty = Callable[[Critic, Tensor, Tensor], Tensor]
PLAYERS = ("discriminator", "generator")


@dataclass
class Latent:
    """What a generator is driven by: the noise ``z`` and, for conditional schemes, the labels it is made for.
    Extensions add their own fields (InfoGAN: the latent codes) by subclassing."""

    z: Tensor
    labels: Tensor | None = None


class AdversarialModule(LabelConditioning, GenerativeModule):
    """Generator vs discriminator with configurable losses, penalties, optimizers, ``n_critic`` and tricks.

    Args:
        generator: maps ``(N, generator.latent_dim)`` noise (and labels, when ``generator.num_classes > 0``) to
            samples (images in [-1, 1], or points (N, dim)).
        discriminator: maps samples (and labels) to one score per sample (a logit or a critic value) and has
            ``features(x)`` (``genlab.nets.protocols``; all ``genlab.nets`` discriminators do). Its ``num_classes``
            must equal the generator's: both 0 (unconditional) or both the data's number of classes.
        optimizer: ``{"generator": ..., "discriminator": ...}`` ``torch.optim`` constructors missing only the
            parameters (Hydra ``_partial_: true``; the ``model/optimizer`` config group).
        loss: ``{"discriminator": f(real_scores, fake_scores), "generator": f(fake_scores)}`` from ``genlab.losses``.
        n_critic: the generator steps once every ``n_critic`` discriminator steps.
        penalties: named ``f(critic, real, fake) -> Tensor`` added to the discriminator loss (gradient penalty,
            R1), each logged as ``penalty/<name>``; ``critic`` is :meth:`discriminate` with the batch's labels bound.
        weight_clip: c > 0 clamps every discriminator parameter to [-c, c] after each of its steps (WGAN,
            Arjovsky et al. 2017, Alg. 1).
        feature_matching: the generator minimises ||E f(x) - E f(G(z))||^2 over the discriminator's features
            *instead of* ``loss["generator"]`` (Salimans et al. 2016, Sec. 3.1).
        historical_averaging: weight w > 0 adds w * ||theta - mean of past theta||^2 to each player's loss
            (Salimans et al. 2016, Sec. 3.3).
        generator_ema: decay d of an exponential moving average of the generator's weights, updated after every
            generator step; ``sample()`` then draws from the averaged generator (Karras et al. 2018; Yazici et al.
            2019). Checkpointed with the model.
        auxiliary_weight: weight w of ACGAN's classification losses (Odena et al. 2017), for a discriminator with an
            auxiliary classifier (``label_mode="auxiliary"``; ``None`` there means the paper's 1.0): D minimises
            adv + w * (CE(real) + CE(fake)), G minimises adv + w * CE(fake). Refused for other discriminators.
        scheduler: an LR schedule constructor missing only the optimizer (``genlab.schedules.linear_decay_by_batch``
            or ``linear_decay``), one per player; ``None``: constant learning rates, as in the papers' presets.
        standing_statistics: ``{"batches": B, "batch_size": N}``: before sampling from weights it has not sampled
            from yet, the sampling net's BatchNorm statistics are measured on B batches of N latents of its own
            (Brock et al. 2019; :mod:`genlab.models.standing_statistics`) instead of the running averages kept in
            training. Training itself is unchanged; ``None``: the running averages.
        steps_per_batch: K > 1 splits each loader batch into K equal slices and takes one step (D, and G every
            ``n_critic``-th step) on each, in order: a loader batch of K x B trains exactly as K batches of B would
            (same data order, same noise; tests/test_steps_per_batch.py), while Lightning's loop, the callbacks and
            the loggers run once per loader batch, so every count in batches (``max_batches``, schedules by batch,
            checkpoint and metric cadences, ``trainer.log_every_n_steps``) counts loader batches. The losses logged
            are the batch's last step's. For models whose step costs about as much as that per-batch work (the 2-D
            toy MLPs: docs/scale.md); 1: one step a batch.
        reuse_fakes: the generator step trains on the fakes that the discriminator step before it judged (made once,
            with their graph, from the same noise) instead of on a fresh batch: one generator forward less a
            generator step, as Radford et al.'s own DCGAN code (dcgan.torch) and PyTorch's DCGAN example train.
            ``False``: fresh noise for each player, as Algorithm 1 of Goodfellow et al. 2014 (and WGAN's) reads.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer: dict[str, OptimizerFactory],
        loss: dict[str, Callable[..., Tensor]],
        n_critic: int = 1,
        penalties: dict[str, Penalty] | None = None,
        weight_clip: float | None = None,
        feature_matching: bool = False,
        historical_averaging: float = 0.0,
        generator_ema: float | None = None,
        auxiliary_weight: float | None = None,
        scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
        standing_statistics: dict[str, int] | None = None,
        steps_per_batch: int = 1,
        reuse_fakes: bool = False,
    ):
        super().__init__()
        if n_critic < 1:
            raise ValueError(f"n_critic must be a positive integer (generator steps every n-th step), got {n_critic}.")
        if steps_per_batch < 1:
            raise ValueError(
                f"model.steps_per_batch must be a positive integer (steps on equal slices of each loader batch; 1: one "
                f"step a batch), got {steps_per_batch}."
            )
        for name, entries in (("loss", loss), ("optimizer", optimizer)):
            missing = set(PLAYERS) - set(entries or {})
            if missing:
                raise ValueError(f"model.{name} needs both 'discriminator' and 'generator' entries; missing {sorted(missing)}.")
        if weight_clip is not None and weight_clip <= 0:
            raise ValueError(f"model.weight_clip must be a positive bound c (parameters kept in [-c, c]) or null, got {weight_clip}.")
        if historical_averaging < 0:
            raise ValueError(f"model.historical_averaging is a penalty weight and must be >= 0, got {historical_averaging}.")
        check_nets(generator, discriminator)
        num_classes = class_count(generator, discriminator)
        self.init_conditioning(num_classes > 0, num_classes)
        self.auxiliary_weight = auxiliary_classification_weight(discriminator, num_classes, auxiliary_weight)
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.optimizer_factories = dict(optimizer)
        self.scheduler_factory = scheduler
        self.discriminator_loss = plain(loss["discriminator"])
        self.generator_loss = plain(loss["generator"])
        self.n_critic = n_critic
        self.steps_per_batch = steps_per_batch
        self.reuse_fakes = reuse_fakes
        self.penalties = {name: plain(penalty) for name, penalty in (penalties or {}).items()}
        self.weight_clip = weight_clip
        self.feature_matching = feature_matching
        self.historical_averaging = historical_averaging
        self.latent_dim: int = generator.latent_dim
        # Submodules, so they are checkpointed and restored with ckpt_path=; never handed to an optimizer.
        self.generator_ema = ParameterAverage(generator, decay=generator_ema) if generator_ema is not None else None
        self.generator_history = ParameterAverage(generator) if historical_averaging else None
        self.discriminator_history = ParameterAverage(discriminator) if historical_averaging else None
        self.standing_statistics = check_standing_statistics(standing_statistics)
        # whether the sampling net's statistics were measured for its current weights: cleared by every generator
        # step and every load_state_dict (a checkpoint's running averages are the training's, or stale)
        self._statistics_measured = False
        self.register_load_state_dict_post_hook(statistics_not_measured)

    def configure_optimizers(self):
        optimizers = [
            self.optimizer_factories["discriminator"](self.discriminator.parameters()),
            self.optimizer_factories["generator"](self.generator.parameters()),
        ]
        return self.scheduled(optimizers, self.scheduler_factory)

    # -- hooks for extensions -----------------------------------------------------------------------------------------
    def draw_latent(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Latent:
        """The noise for ``n`` fakes (from ``generator``, else the module's own stream). ``labels`` are the real
        batch's in training and the condition when sampling; unconditional schemes ignore them, conditional ones
        check them or, when there are none, draw them uniformly from the same stream *after* the noise (so a seed
        fixes z whatever the labels)."""
        z = self.randn(n, self.latent_dim, generator=generator)
        if not self.conditional:
            return Latent(z)
        return Latent(z, self.uniform_labels(n, labels, generator or self.rng))

    def generate(self, latent: Latent, net: nn.Module | None = None) -> Tensor:
        """Fakes from ``latent`` with ``net`` (default: the live generator; sampling passes the EMA copy)."""
        net = net or self.generator
        return net(latent.z, latent.labels) if self.conditional else net(latent.z)

    def discriminate(self, samples: Tensor, labels: Tensor | None = None) -> Tensor:
        """One score per sample; conditional discriminators also read the labels."""
        return self.discriminator(samples, labels) if self.conditional else self.discriminator(samples)

    # -- the sampling contract ----------------------------------------------------------------------------------------
    @property
    def sampling_net(self) -> nn.Module:
        """The generator that :meth:`sample` and :meth:`decode` use: the EMA copy when there is one, with standing
        statistics measured first when ``standing_statistics`` is set and the weights changed since the last time."""
        net = self.generator if self.generator_ema is None else self.generator_ema.module
        if self.standing_statistics is not None and not self._statistics_measured:
            # a stream of its own, seeded the same each time: equal weights get equal statistics, and sampling never
            # moves the training noise (self.rng), so a resumed run stays exact
            stream = torch.Generator().manual_seed(0)
            with evaluating(net):  # leaves net in the mode it was in
                measure_standing_statistics(
                    net, lambda n: self.generate(self.draw_latent(n, generator=stream), net), **self.standing_statistics
                )
            self._statistics_measured = True
        return net

    def sample(self, n: int, *, condition: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples; a conditional scheme makes them for ``condition`` (class ids), else for uniform labels."""
        if not self.conditional:
            reject_condition(self, condition)
        net = self.sampling_net
        with evaluating(net):
            return self.generate(self.draw_latent(n, condition, generator), net)

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Samples from given noise ``z`` (N, latent_dim) (and labels, for a conditional scheme) with the sampling
        net in eval mode: the capability latent-space tools call (``LatentTraversal``, class grids, interpolation)."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"decode(z) needs z of shape (N, latent_dim={self.latent_dim}), got {tuple(z.shape)}.")
        labels = self._sampling_condition(len(z), labels) if self.conditional else None
        net = self.sampling_net
        with evaluating(net):
            return self.generate(Latent(z.to(self.device), labels), net)

    # -- training -----------------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        # before the callbacks' on_fit_start: a loader batch that does not split into equal steps is a config mistake
        batch_size = getattr(getattr(self.trainer, "datamodule", None), "batch_size", None)
        if stage == "fit" and isinstance(batch_size, int) and batch_size % self.steps_per_batch:
            raise ValueError(
                f"model.steps_per_batch={self.steps_per_batch} splits each loader batch into that many equal steps, but "
                f"data.batch_size={batch_size} does not divide by it. Set data.batch_size to steps_per_batch x the batch "
                f"of one step (e.g. data.batch_size={self.steps_per_batch * batch_size} for steps of {batch_size})."
            )

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        d_opt, g_opt = self.optimizers()
        steps = self.steps_per_batch
        # equal slices; an epoch's short last batch (data without drop_last) gets near-equal ones
        edges = [i * len(batch) // steps for i in range(steps + 1)]
        logs = {}
        for index, (start, end) in enumerate(zip(edges, edges[1:])):
            if start == end:  # a last batch shorter than steps_per_batch
                continue
            part = batch[start:end] if steps > 1 else batch
            # the step's index in the epoch, as if every slice were a batch of its own
            generator_turn = (batch_idx * steps + index + 1) % self.n_critic == 0
            reused = generator_turn and self.reuse_fakes
            latent, fake = self.make_fakes(part, with_graph=reused)
            logs |= self.discriminator_step(part, d_opt, latent, fake.detach())
            if generator_turn:
                generator_fakes = (latent, fake) if reused else self.make_fakes(part, with_graph=True)
                logs |= self.generator_step(part, g_opt, *generator_fakes)
        self.log_dict(logs, prog_bar=True, batch_size=len(part))

    def make_fakes(self, batch: Batch, with_graph: bool) -> tuple[Latent, Tensor]:
        """Fresh noise for the batch and the fakes it makes, with their graph when a generator step will use them."""
        latent = self.draw_latent(len(batch), batch.labels)
        with torch.set_grad_enabled(with_graph):
            return latent, self.generate(latent)

    def discriminator_step(self, batch: Batch, optimizer, latent: Latent, fake: Tensor) -> dict[str, Tensor]:
        with self.toggled_optimizer(optimizer):
            loss, logs = self.discriminator_objective(batch, fake, latent)
            self.manual_step(optimizer, loss)
        if self.weight_clip is not None:
            with torch.no_grad():
                for p in self.discriminator.parameters():
                    p.clamp_(-self.weight_clip, self.weight_clip)
        if self.discriminator_history is not None:
            self.discriminator_history.update(self.discriminator)
        return logs

    def generator_step(self, batch: Batch, optimizer, latent: Latent, fake: Tensor) -> dict[str, Tensor]:
        with self.toggled_optimizer(optimizer):
            loss, logs = self.generator_objective(batch, fake, latent)
            self.manual_step(optimizer, loss)
        if self.generator_history is not None:
            self.generator_history.update(self.generator)
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator)
        self._statistics_measured = False
        return logs

    def discriminator_objective(self, batch: Batch, fake: Tensor, latent: Latent) -> tuple[Tensor, dict[str, Tensor]]:
        """The discriminator's loss on the real batch and detached fakes: adversarial loss (+ ACGAN's classification
        loss) + penalties + historical average, and what to log."""
        real_scores, real_classes = self._scores(batch.images, batch.labels)
        fake_scores, fake_classes = self._scores(fake, latent.labels)
        loss = self.discriminator_loss(real_scores, fake_scores)
        logs = {"d/real_score": real_scores.detach().mean(), "d/fake_score": fake_scores.detach().mean()}
        if self.auxiliary_weight is not None:
            classification = auxiliary_classifier_discriminator_loss(real_classes, batch.labels, fake_classes, latent.labels)
            loss = loss + self.auxiliary_weight * classification
            logs["d/classification_loss"] = classification.detach()
            logs["d/real_class_accuracy"] = (real_classes.detach().argmax(1) == batch.labels).float().mean()
        critic = partial(self.discriminate, labels=batch.labels)
        for name, penalty in self.penalties.items():
            value = penalty(critic, batch.images, fake)
            logs[f"penalty/{name}"] = value.detach()
            loss = loss + value
        if self.discriminator_history is not None:
            loss = loss + self.historical_averaging * self.discriminator_history.squared_distance(self.discriminator)
        return loss, logs | {"loss/d": loss.detach()}

    def generator_objective(self, batch: Batch, fake: Tensor, latent: Latent) -> tuple[Tensor, dict[str, Tensor]]:
        """The generator's loss on fakes it just made (with their graph): the adversarial loss, or feature matching
        against the real batch, plus ACGAN's classification loss and the historical average; and what to log."""
        logs = {}
        if self.feature_matching:
            loss = feature_matching_loss(self._features(batch.images, batch.labels), self._features(fake, latent.labels))
            fake_classes = self.discriminator.score_and_classify(fake)[1] if self.auxiliary_weight is not None else None
        else:
            fake_scores, fake_classes = self._scores(fake, latent.labels)
            loss = self.generator_loss(fake_scores)
        if self.auxiliary_weight is not None:
            classification = auxiliary_classifier_generator_loss(fake_classes, latent.labels)
            loss = loss + self.auxiliary_weight * classification
            logs["g/classification_loss"] = classification.detach()
        if self.generator_history is not None:
            loss = loss + self.historical_averaging * self.generator_history.squared_distance(self.generator)
        return loss, logs | {"loss/g": loss.detach()}

    def _scores(self, samples: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Scores and, for an auxiliary-classifier discriminator, class logits, from one trunk pass."""
        if self.auxiliary_weight is None:
            return self.discriminate(samples, labels), None
        return self.discriminator.score_and_classify(samples)

    def _features(self, samples: Tensor, labels: Tensor | None) -> Tensor:
        return self.discriminator.features(samples, labels) if self.conditional else self.discriminator.features(samples)


def statistics_not_measured(module: "AdversarialModule", incompatible_keys) -> None:
    """``load_state_dict`` hook: loaded weights have not had their standing statistics measured (a module-level
    function, not a lambda, so the module still pickles, as ddp_spawn needs)."""
    module._statistics_measured = False


def check_nets(generator: nn.Module, discriminator: nn.Module) -> None:
    """Fail at build time, with the config key to fix, when a net does not fit the adversarial contract."""
    from genlab.nets.protocols import Discriminator, Generator

    if not isinstance(generator, Generator) or not isinstance(generator.latent_dim, int):
        raise TypeError(
            f"model.generator ({type(generator).__name__}) is not a generator: it needs an integer latent_dim and "
            "forward(z) -> samples. Point model.generator._target_ at a genlab.nets generator or add those."
        )
    if not isinstance(discriminator, Discriminator):
        raise TypeError(
            f"model.discriminator ({type(discriminator).__name__}) is not a discriminator: it needs forward(x) -> "
            "one score per sample and features(x) -> its last hidden layer (feature matching and minibatch "
            "discrimination read it). Point model.discriminator._target_ at a genlab.nets discriminator or add those."
        )


def class_count(generator: nn.Module, discriminator: nn.Module) -> int:
    """The number of classes both nets are conditioned on (0: unconditional). Nets that disagree are refused: a
    discriminator that cannot see the labels cannot hold the generator to them, and the reverse cannot use them."""
    from genlab.nets.protocols import ClassConditional

    # only nets that declare how they read labels (num_classes and label_mode) count: a discriminator whose
    # num_classes means something else (the semi-supervised GAN's K class logits) is not label-conditioned
    counts = [int(net.num_classes or 0) if isinstance(net, ClassConditional) else 0 for net in (generator, discriminator)]
    if counts[0] != counts[1]:
        raise ValueError(
            f"model.generator.num_classes={counts[0]} but model.discriminator.num_classes={counts[1]}: a class-conditional "
            "GAN conditions both nets on the same classes. Pick a conditioning for both (model/conditioning=concat, "
            "projection or auxiliary sets both to data.num_classes), or model/conditioning=none for an unconditional GAN."
        )
    return counts[0]


def auxiliary_classification_weight(discriminator: nn.Module, num_classes: int, weight: float | None) -> float | None:
    """ACGAN's classification weight when the discriminator has an auxiliary classifier (``None`` -> Odena et al.'s
    equal weighting, 1.0), ``None`` otherwise; a weight for a discriminator without one is a config mistake."""
    from genlab.nets.protocols import AuxiliaryClassifier

    auxiliary = num_classes > 0 and getattr(discriminator, "label_mode", None) == "auxiliary"
    if not auxiliary:
        if weight is not None:
            raise ValueError(
                f"model.auxiliary_weight={weight} weights ACGAN's classification loss, but model.discriminator "
                f"({type(discriminator).__name__}, label_mode={getattr(discriminator, 'label_mode', None)!r}) has no "
                "auxiliary classifier: pick model/conditioning=auxiliary, or leave model.auxiliary_weight out."
            )
        return None
    if not isinstance(discriminator, AuxiliaryClassifier):
        raise TypeError(
            f"model.discriminator ({type(discriminator).__name__}) has label_mode='auxiliary' but no "
            "score_and_classify(x) -> (scores, class_logits) (genlab.nets.protocols.AuxiliaryClassifier)."
        )
    weight = 1.0 if weight is None else weight
    if weight < 0:
        raise ValueError(f"model.auxiliary_weight is a loss weight and must be >= 0, got {weight}.")
    return float(weight)
