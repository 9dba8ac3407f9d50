"""The MNIST discriminator of Salimans et al. 2016 ("Improved Techniques for Training GANs", Sec. 5; code
openai/improved-gan, mnist_feature_matching.py): a fully connected net with Gaussian noise on its input and after
every hidden layer, and one logit per class.

The noise is the regulariser that lets a classifier with 100 labels not memorise them; it is on only in training
mode (the paper's code evaluates with ``deterministic=True``). Weight normalisation (Salimans & Kingma 2016) on
every linear layer, as in that code.
"""

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm


class GaussianNoise(nn.Module):
    """x + N(0, std^2) in training mode, x in eval mode."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x: Tensor) -> Tensor:
        if self.training and self.std > 0:
            return x + self.std * torch.randn_like(x)
        return x


class NoisyMLPDiscriminator(nn.Module):
    """Image -> ``num_classes`` class logits (N, num_classes). ``features`` is the last hidden layer (the layer the
    paper's feature matching reads)."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        num_classes: int,
        hidden: tuple[int, ...] = (1000, 500, 250, 250, 250),
        input_noise: float = 0.3,
        hidden_noise: float = 0.5,
    ):
        super().__init__()
        if num_classes < 2:
            raise ValueError(
                f"NoisyMLPDiscriminator outputs one logit per class and needs num_classes >= 2, got {num_classes}."
            )
        layers: list[nn.Module] = [nn.Flatten(), GaussianNoise(input_noise)]
        sizes = [channels * image_size * image_size, *hidden]
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i:
                layers.append(GaussianNoise(hidden_noise))
            layers += [weight_norm(nn.Linear(n_in, n_out)), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(GaussianNoise(hidden_noise), weight_norm(nn.Linear(hidden[-1], num_classes)))

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.head(self.features(x))
