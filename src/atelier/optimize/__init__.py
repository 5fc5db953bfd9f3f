"""Optimization-based style transfer (Gatys et al.)."""

from .gatys import GatysConfig, GatysStyleTransfer, Progress, StyleTransferInterrupted, pyramid_sizes

__all__ = ["GatysConfig", "GatysStyleTransfer", "Progress", "StyleTransferInterrupted", "pyramid_sizes"]
