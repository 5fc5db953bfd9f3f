"""Network architectures: the feed-forward :class:`TransformerNet` with conditional instance
normalization (Johnson et al. 2016; Dumoulin et al. 2017, "A Learned Representation for
Artistic Style") and the decoders that invert VGG features (:class:`AdaINDecoder`, Huang &
Belongie 2017; :class:`InversionDecoder`, Li et al. 2017). Architectures only: training is
in :mod:`atelier.training`, the methods that use them in :mod:`atelier.methods`.
"""

from .decoders import AdaINDecoder, InversionDecoder
from .transformer import ConditionalInstanceNorm2d, TransformerNet, style_weights_matrix

__all__ = ["AdaINDecoder", "ConditionalInstanceNorm2d", "InversionDecoder", "TransformerNet", "style_weights_matrix"]
