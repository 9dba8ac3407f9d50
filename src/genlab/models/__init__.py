"""LightningModules: one per training scheme. Variants of a scheme are configs, not classes."""

from genlab.models.adversarial import AdversarialModule
from genlab.models.autoregressive import AutoregressiveModule
from genlab.models.base import GenerativeModule
from genlab.models.began import BEGAN
from genlab.models.cyclegan import CycleGAN
from genlab.models.infogan import InfoGAN
from genlab.models.pix2pix import Pix2Pix
from genlab.models.rbm import RestrictedBoltzmannMachine
from genlab.models.semi_supervised import SemiSupervisedGAN
from genlab.models.srgan import SuperResolutionGAN, SuperResolutionModule
from genlab.models.stargan import StarGAN
from genlab.models.vae import VariationalModule

__all__ = ["AdversarialModule", "AutoregressiveModule", "BEGAN", "CycleGAN", "GenerativeModule", "InfoGAN", "Pix2Pix", "RestrictedBoltzmannMachine", "SemiSupervisedGAN", "SuperResolutionGAN", "SuperResolutionModule", "StarGAN", "VariationalModule"]
