"""LightningModules: one per training scheme. Variants of a scheme are configs, not classes."""

from genlab.models.adversarial import AdversarialModule
from genlab.models.base import GenerativeModule

__all__ = ["AdversarialModule", "GenerativeModule"]
