"""Exception types raised by atelier.

All errors caused by what a user passed in (a missing file, an image that is
too large, an output path in a directory that does not exist, ...) are
:class:`InputError`. Front ends (the CLI) print ``str(e)`` as a one-line
message and exit with a non-zero status instead of showing a traceback.
"""

from __future__ import annotations

import os

__all__ = ["AtelierError", "InputError"]


class AtelierError(Exception):
    """Base class of every exception that atelier raises on purpose."""


class InputError(AtelierError, ValueError):
    """Bad user input (a file, an option value, an environment variable).

    ``str(e)`` is a one-line message that names the file (if any), the
    problem, and what to do about it, e.g.
    ``"photo.heic: HEIC/HEIF format is not supported; convert it to PNG or JPEG"``.

    Being a :class:`ValueError` too, it can be caught by code that does not
    know about atelier.

    Args:
        message: the problem and the remedy, without the file name.
        path: the file or directory concerned, or ``None``.

    Attributes:
        message: ``message`` as given.
        path: ``path`` as given (``str``/``os.PathLike``) or ``None``.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.message = message
        self.path = path
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        return f"{os.fspath(self.path)}: {self.message}"

    def __reduce__(self):  # keep pickling (multiprocessing) working
        return (type(self), (self.message, self.path))
