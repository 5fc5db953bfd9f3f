"""Feed-forward style networks (Johnson et al. 2016; Dumoulin et al. 2017; Huang & Belongie 2017).

:class:`TransformerNet` stylizes an image in one forward pass; train one with
:mod:`atelier.training` and load it with :func:`atelier.training.load_trained`.
:class:`AdaINModel` stylizes with any style image (arbitrary style transfer with AdaIN);
train its :class:`AdaINDecoder` with :class:`atelier.training.AdaINTrainer` and load it
with :func:`atelier.training.load_adain`.
"""

from .adain import AdaINDecoder, AdaINModel, StyleFeatures, adain, mean_std
from .transformer import ConditionalInstanceNorm2d, TransformerNet, style_weights_matrix

__all__ = ["AdaINDecoder", "AdaINModel", "ConditionalInstanceNorm2d", "StyleFeatures", "TransformerNet", "adain",
           "mean_std", "style_weights_matrix"]
