"""Plain ``nn.Module`` networks. Nothing in here knows about training, losses or Lightning."""

from genlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from genlab.nets.init import normal_init
from genlab.nets.mlp import MLPDiscriminator, MLPGenerator

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator", "normal_init"]
