"""pix2pix networks: U-Net generator, PatchGAN discriminators, weight init."""

from pix2pix_aa.networks.init import init_weights
from pix2pix_aa.networks.patchgan import PatchGANDiscriminator, PixelDiscriminator
from pix2pix_aa.networks.unet import UNetGenerator

__all__ = ["UNetGenerator", "PatchGANDiscriminator", "PixelDiscriminator", "init_weights"]
