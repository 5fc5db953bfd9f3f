"""Optimization-based style transfer (Gatys, Ecker & Bethge 2016, "Image Style Transfer
Using Convolutional Neural Networks"): the image's pixels are optimized against content,
Gram style and TV losses. :mod:`.optimize` runs it, :mod:`.lbfgs` is its L-BFGS."""

from .optimize import GatysConfig, GatysStyleTransfer, Progress, StyleTransferInterrupted, pyramid_sizes
from .lbfgs import LBFGS

__all__ = ["LBFGS", "GatysConfig", "GatysStyleTransfer", "Progress", "StyleTransferInterrupted", "pyramid_sizes"]
