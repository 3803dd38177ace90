"""pix2pix-aa: anti-aliased pix2pix (Zhang, ICML 2019) and shift-stability measurement."""

__version__ = "0.1.0"
