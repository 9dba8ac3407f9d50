"""Plain ``nn.Module`` networks. Nothing in here knows about training, losses or Lightning.

Every discriminator exposes ``features(x) -> (N, F)`` (its last hidden layer) and ``forward(x) -> (N,)`` scores.
"""

from genlab.nets.began import BEGANDecoder, BEGANDiscriminator
from genlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from genlab.nets.heads import MinibatchDiscrimination
from genlab.nets.infogan import CodeDiscriminator, CodeHead
from genlab.nets.init import normal_init
from genlab.nets.masked import GatedBlock, MaskedConv2d, PixelCNN
from genlab.nets.mlp import MLPDiscriminator, MLPGenerator
from genlab.nets.noisy_mlp import NoisyMLPDiscriminator
from genlab.nets.pixelrnn import RasterLSTM, RowLSTM
from genlab.nets.rbm import BernoulliRBM
from genlab.nets.resnet_generator import ResnetGenerator
from genlab.nets.srresnet import SRGANDiscriminator, SRResNet
from genlab.nets.stargan import StarGANDiscriminator, StarGANGenerator
from genlab.nets.toy import Maxout, ToyMLPDiscriminator, ToyMLPGenerator
from genlab.nets.unet import UnetGenerator
from genlab.nets.vae import ConvDecoder, ConvEncoder

__all__ = [
    "BEGANDecoder",
    "BEGANDiscriminator",
    "BernoulliRBM",
    "CodeDiscriminator",
    "CodeHead",
    "ConvDecoder",
    "ConvEncoder",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "GatedBlock",
    "MaskedConv2d",
    "Maxout",
    "MinibatchDiscrimination",
    "MLPDiscriminator",
    "MLPGenerator",
    "NoisyMLPDiscriminator",
    "PixelCNN",
    "RasterLSTM",
    "ResnetGenerator",
    "RowLSTM",
    "SRGANDiscriminator",
    "SRResNet",
    "StarGANDiscriminator",
    "StarGANGenerator",
    "ToyMLPDiscriminator",
    "ToyMLPGenerator",
    "UnetGenerator",
    "normal_init",
]
