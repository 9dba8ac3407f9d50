"""Plain ``nn.Module`` networks. Nothing in here knows about training, losses or Lightning.

Every discriminator exposes ``features(x) -> (N, F)`` (its last hidden layer) and ``forward(x) -> (N,)`` scores.
"""

from genlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from genlab.nets.heads import MinibatchDiscrimination
from genlab.nets.init import normal_init
from genlab.nets.mlp import MLPDiscriminator, MLPGenerator
from genlab.nets.toy import Maxout, ToyMLPDiscriminator, ToyMLPGenerator

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "Maxout",
    "MinibatchDiscrimination",
    "MLPDiscriminator",
    "MLPGenerator",
    "ToyMLPDiscriminator",
    "ToyMLPGenerator",
    "normal_init",
]
