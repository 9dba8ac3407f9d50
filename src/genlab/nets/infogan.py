"""InfoGAN's Q network (Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by Information Maximizing
Generative Adversarial Nets", Sec. 6 and App. C): a small head on the discriminator's last hidden layer that predicts
the latent codes a fake was made from.

Sharing D's trunk makes the mutual-information term almost free (Sec. 6: Q and D share all convolutional layers,
with one final layer for the parameters of Q(c|x)), and putting the head inside the discriminator module
(:class:`CodeDiscriminator`) makes it train with D's optimizer and be saved, averaged and put in eval mode with D,
without any special case in the training scheme.
"""

import torch
from torch import Tensor, nn


class CodeHead(nn.Module):
    """D's features (N, in_features) -> Q(c | x): logits (N, categories) of the categorical code, and the mean and
    log-std (N, continuous_codes) of a factored Gaussian over the continuous codes.

    The openai/InfoGAN MNIST Q: one hidden layer of 128 units with BatchNorm and LeakyReLU(0.1), then the code
    parameters. ``learn_std=False`` fixes every std at 1 (log-std 0, openai/InfoGAN's ``fix_std=True`` for MNIST):
    with a learnt std the Gaussian log-likelihood of a continuous code is unbounded (it grows as log 1/std while Q
    gets more precise), so the continuous codes can outbid the categorical one (at most log K nats) for the digit
    identity; with std 1 the most a continuous code can add is half its variance, 1/6 nat.
    """

    def __init__(self, in_features: int, categories: int, continuous_codes: int, hidden: int = 128, learn_std: bool = True):
        super().__init__()
        self.categories = categories
        self.continuous_codes = continuous_codes
        self.learn_std = learn_std
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.BatchNorm1d(hidden),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Linear(hidden, categories + (2 if learn_std else 1) * continuous_codes),
        )

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.net(features)
        if not self.learn_std:
            logits, mean = out.split([self.categories, self.continuous_codes], dim=1)
            return logits, mean, torch.zeros_like(mean)
        logits, mean, log_std = out.split([self.categories, self.continuous_codes, self.continuous_codes], dim=1)
        return logits, mean, log_std


class CodeDiscriminator(nn.Module):
    """A discriminator with a :class:`CodeHead` on its trunk: scores and features are the wrapped net's, and
    :meth:`codes` is Q(c | x) on the same features."""

    def __init__(self, net: nn.Module, code_head: CodeHead):
        super().__init__()
        self.net = net
        self.code_head = code_head

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(x)

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net.features(x)

    def codes(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.code_head(self.net.features(x))


@torch.no_grad()
def feature_size(generator: nn.Module, discriminator: nn.Module) -> int:
    """The width F of ``discriminator.features`` on what ``generator`` makes, found by running both once in eval
    mode on zero noise (no statistics move, no random numbers are drawn), so the head fits any pair of nets."""
    modes = generator.training, discriminator.training
    generator.eval(), discriminator.eval()
    try:
        return int(discriminator.features(generator(torch.zeros(2, generator.latent_dim))).shape[1])
    finally:
        generator.train(modes[0]), discriminator.train(modes[1])
