"""Circular (wrap-around) padding for seamless, tileable textures (issue 28 item 3).

Inside :func:`circular_padding` every convolution of atelier's networks pads circularly instead of
with zeros (the VGG19 encoder) or by reflection (the feed-forward transformer network, the AdaIN and
WCT decoders): the image is treated as a torus, so a network applied to an image whose sides are a
multiple of its downsampling factor is exactly equivariant to circular shifts and its output has no
left/right or top/bottom border at all. The switch is a :mod:`contextvars` variable: it applies to
the thread (or task) that entered the block and to nothing else.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Iterator

_CIRCULAR = contextvars.ContextVar("atelier_circular_padding", default=False)


@contextmanager
def circular_padding(enabled: bool = True) -> Iterator[None]:
    """Pad every convolution circularly inside the block (``enabled=False``: leave as it is)."""
    token = _CIRCULAR.set(bool(enabled) or _CIRCULAR.get())
    try:
        yield
    finally:
        _CIRCULAR.reset(token)


def is_circular() -> bool:
    """True inside :func:`circular_padding`."""
    return _CIRCULAR.get()


def pad_mode(default: str) -> str:
    """The :func:`torch.nn.functional.pad` mode a convolution should use: ``"circular"`` inside
    :func:`circular_padding`, else ``default`` (e.g. ``"reflect"``)."""
    return "circular" if _CIRCULAR.get() else default
