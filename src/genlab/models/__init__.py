"""LightningModules: one per training scheme. Variants of a scheme are configs, not classes."""

from genlab.models.adversarial import AdversarialModule
from genlab.models.autoregressive import AutoregressiveModule
from genlab.models.base import GenerativeModule
from genlab.models.infogan import InfoGAN
from genlab.models.semi_supervised import SemiSupervisedGAN
from genlab.models.vae import VariationalModule

__all__ = ["AdversarialModule", "AutoregressiveModule", "GenerativeModule", "InfoGAN", "SemiSupervisedGAN", "VariationalModule"]
