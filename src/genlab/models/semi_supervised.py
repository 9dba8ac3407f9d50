"""The semi-supervised GAN of Salimans et al. 2016 ("Improved Techniques for Training GANs", Sec. 5): the
discriminator is a K-class classifier of real images whose (K+1)-th class, "fake", has its logit fixed at 0.

With logits l = D(x) (N, K) and Z(x) = sum_k exp(l_k):
  * unsupervised loss: the ordinary GAN loss on the real/fake logit log Z(x), since p(real | x) = Z / (Z + 1)
    (:func:`genlab.losses.real_logit_from_class_logits`), on the unlabelled images and the fakes;
  * supervised loss: cross-entropy of the K logits on the labelled images (:func:`genlab.losses.supervised_class_loss`);
  * generator: feature matching on D's last hidden layer (Salimans et al. found it, not minibatch discrimination,
    gives the best classifier; ``model.feature_matching=true`` in the preset).

Which images are labelled is the data's business: ``data.labels_per_class`` keeps the labels of a seeded subset and
marks the rest -1 (see :mod:`genlab.data.labelled`). This scheme splits each batch by that mark and overrides only
the hooks: :meth:`SemiSupervisedGAN.discriminate` (the K+1 reading of D) and the two objectives (which images each
term sees).
"""

import torch
from torch import Tensor, nn

from genlab.data.batch import Batch
from genlab.losses import real_logit_from_class_logits, supervised_class_loss
from genlab.models.adversarial import AdversarialModule, Latent
from genlab.models.base import evaluating


class SemiSupervisedGAN(AdversarialModule):
    """Args:
        generator, discriminator: as for :class:`AdversarialModule`.
        num_classes: K, the number of classes of the data (``${data.num_classes}``); the discriminator must output
            K logits per image (:class:`genlab.nets.noisy_mlp.NoisyMLPDiscriminator`).
        adversarial_weight: weight of the unsupervised (GAN) part of D's loss against the supervised cross-entropy:
            0.5 in the paper's code (``loss_lab + 0.5 * (loss_real + loss_fake)``).
        **kwargs: everything :class:`AdversarialModule` takes.

    :meth:`classify` is the capability the ``classifier_error`` callback scores on held-out images.
    """

    refuses_label_conditioning = "its discriminator is the K-class classifier trained from the labelled subset, and its generator is unconditional"

    def __init__(
        self, generator: nn.Module, discriminator: nn.Module, num_classes: int, adversarial_weight: float = 0.5, **kwargs
    ):
        if num_classes < 2:
            raise ValueError(
                f"SemiSupervisedGAN classifies real images into data.num_classes classes and needs labelled data "
                f"(num_classes >= 2), got num_classes={num_classes}; pick labelled data such as data=mnist5k or "
                "data=mnist, or an unconditional preset (model=dcgan) for unlabelled data."
            )
        if adversarial_weight < 0:
            raise ValueError(f"model.adversarial_weight must be >= 0, got {adversarial_weight}.")
        if kwargs.get("steps_per_batch", 1) != 1:
            # genlab.data.labelled's batches: a slice would hold only unlabelled or only labelled items
            raise ValueError(
                "model=ssgan takes one step a batch (its batches are B unlabelled items followed by B labelled ones, "
                f"which slices would split apart); got model.steps_per_batch={kwargs['steps_per_batch']}. Leave it at 1."
            )
        super().__init__(generator=generator, discriminator=discriminator, **kwargs)
        outputs = _output_width(self.generator, self.discriminator)
        if outputs != num_classes:
            raise ValueError(
                f"SemiSupervisedGAN needs a discriminator with one logit per class ({num_classes}), but "
                f"model.discriminator ({type(self.discriminator).__name__}) outputs {outputs}; set its num_classes to "
                "${data.num_classes} (genlab.nets.NoisyMLPDiscriminator)."
            )
        self.adversarial_weight = adversarial_weight

    def discriminate(self, samples: Tensor, labels: Tensor | None = None) -> Tensor:
        """log Z(x): the logit of D(x) = Z / (Z + 1), what every adversarial loss and penalty reads."""
        return real_logit_from_class_logits(self.discriminator(samples))

    @torch.no_grad()
    def classify(self, images: Tensor) -> Tensor:
        """Class logits (N, K) of real images, noise off: the discriminator as the classifier it was trained to be."""
        with evaluating(self.discriminator):
            return self.discriminator(images.to(self.device))

    def discriminator_objective(self, batch: Batch, fake: Tensor, latent: Latent) -> tuple[Tensor, dict[str, Tensor]]:
        unlabelled, labelled = split_by_labels(batch)
        adversarial, logs = super().discriminator_objective(unlabelled, fake, latent)
        logits = self.discriminator(labelled.images)
        supervised = supervised_class_loss(logits, labelled.labels)
        loss = self.adversarial_weight * adversarial + supervised
        accuracy = (logits.detach().argmax(1) == labelled.labels).float().mean()
        logs |= {"loss/d": loss.detach(), "loss/d_supervised": supervised.detach(), "d/labelled_accuracy": accuracy}
        return loss, logs

    def generator_objective(self, batch: Batch, fake: Tensor, latent: Latent) -> tuple[Tensor, dict[str, Tensor]]:
        """Feature matching (or the configured generator loss) against the unlabelled images only: the labelled
        ones are repeated in every batch and would pull G towards those few digits."""
        return super().generator_objective(split_by_labels(batch)[0], fake, latent)


def split_by_labels(batch: Batch) -> tuple[Batch, Batch]:
    """(unlabelled, labelled) parts of a batch: labels -1 mark the unlabelled images (:mod:`genlab.data.labelled`).
    A fully labelled batch is both: every image serves the GAN and the classifier."""
    if batch.labels is None:
        raise ValueError(
            "SemiSupervisedGAN got a batch without labels: it needs labelled data (some labels >= 0; -1 marks "
            "unlabelled images). Pick labelled data such as data=mnist5k with data.labels_per_class=10."
        )
    known = batch.labels >= 0
    if not bool(known.any()):
        raise ValueError(
            "SemiSupervisedGAN got a batch with no labelled image (all labels -1): the labelled-subset loader puts "
            "labelled images in every batch (data.labels_per_class); a custom loader must do the same."
        )
    unlabelled = batch if bool(known.all()) else batch[~known]
    return unlabelled, batch[known]


@torch.no_grad()
def _output_width(generator: nn.Module, discriminator: nn.Module) -> int:
    """How many logits ``discriminator`` gives per sample, found on two fakes in eval mode (nothing moves)."""
    with evaluating(generator), evaluating(discriminator):
        out = discriminator(generator(torch.zeros(2, generator.latent_dim)))
    return 1 if out.dim() == 1 else int(out.shape[1])
