"""genlab: a PyTorch Lightning + Hydra lab for generative image models."""

__version__ = "0.1.0"
