"""pix2pix networks: U-Net and ResNet generators, PatchGAN discriminators, weight init."""

from pix2pix_aa.networks.init import init_weights
from pix2pix_aa.networks.patchgan import PatchGANDiscriminator, PixelDiscriminator
from pix2pix_aa.networks.resnet import ResNetGenerator
from pix2pix_aa.networks.unet import UNetGenerator

__all__ = ["UNetGenerator", "ResNetGenerator", "PatchGANDiscriminator", "PixelDiscriminator", "init_weights"]
