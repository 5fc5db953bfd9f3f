"""Optimization-based style transfer (Gatys et al.)."""

from .gatys import GatysConfig, GatysStyleTransfer, Progress, StyleTransferInterrupted, pyramid_sizes
from .lbfgs import LBFGS

__all__ = ["LBFGS", "GatysConfig", "GatysStyleTransfer", "Progress", "StyleTransferInterrupted", "pyramid_sizes"]
