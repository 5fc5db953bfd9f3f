"""Video style transfer without flicker: any stylizer driven frame by frame, with temporal
consistency from optical flow (Ruder, Dosovitskiy & Brox 2016/2018, "Artistic Style Transfer for
Videos"; ReCoNet, Gao et al. 2018). :mod:`.consistency` holds the frame-by-frame object
:class:`VideoStylizer`; it imports no other method (the interfaces wire the concrete stylizers in
through the protocols of :mod:`atelier.core.protocols`)."""

from .consistency import LONG_TERM_OFFSETS, MODES, TemporalConfig, VideoStylizer

__all__ = ["LONG_TERM_OFFSETS", "MODES", "TemporalConfig", "VideoStylizer"]
