"""Analysis of results: how well a stylized image keeps the content and takes the style."""

from .metrics import evaluate, ssim_luminance, style_distance

__all__ = ["evaluate", "ssim_luminance", "style_distance"]
