"""Feed-forward style networks (Johnson et al. 2016; Dumoulin et al. 2017).

:class:`TransformerNet` stylizes an image in one forward pass; train one with
:mod:`atelier.training` and load it with :func:`atelier.training.load_trained`.
"""

from .transformer import ConditionalInstanceNorm2d, TransformerNet, style_weights_matrix

__all__ = ["ConditionalInstanceNorm2d", "TransformerNet", "style_weights_matrix"]
