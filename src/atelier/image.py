"""``atelier.image``: the user-facing image helpers in one namespace (a re-export of
:mod:`atelier.core.io` and :mod:`atelier.core.color`; new code imports those)."""

from .core.color import *  # noqa: F401,F403
from .core.color import PRESERVE_COLOR_MODES, __all__ as _color_all  # noqa: F401
from .core.decode import ImageSource  # noqa: F401
from .core.io import *  # noqa: F401,F403
from .core.io import __all__ as _io_all

__all__ = [*_io_all, *_color_all]
