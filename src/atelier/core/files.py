"""Files: atomic writes, sha256 of a file, the cache and config folders."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import tempfile
from typing import IO, Iterator


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks.

    Raises:
        OSError: the file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def umask() -> int:
    """The process umask, read without changing it (falls back to 0o022)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Write ``path`` all at once or not at all.

    Yields a temporary file beside ``path``; when the block ends without an error the
    file is flushed, fsynced, given the usual permissions (``0o666`` minus the umask,
    not ``mkstemp``'s ``0o600``) and renamed over ``path``. On any error (Ctrl-C
    included) the temporary file is removed and ``path`` is left as it was, so a
    failed job never leaves a partial output file.

    Raises:
        InputError: the file cannot be written (names the path and the OS reason).
    """
    from .errors import InputError

    path = pathlib.Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise InputError(f"could not write the file ({e.strerror or e}); check free disk space and permissions",
                         path) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def cache_dir() -> pathlib.Path:
    """The cache folder: ``$ATELIER_CACHE_DIR``, else the platform's user cache dir for atelier."""
    if os.environ.get("ATELIER_CACHE_DIR"):
        return pathlib.Path(os.environ["ATELIER_CACHE_DIR"])
    import platformdirs  # only when needed: a bare GPU machine may lack it

    return pathlib.Path(platformdirs.user_cache_dir("atelier"))


def config_dir() -> pathlib.Path:
    """The config folder: ``$ATELIER_CONFIG_DIR``, else the platform's user config dir for atelier
    (presets, the local Content Credentials certificate)."""
    if os.environ.get("ATELIER_CONFIG_DIR"):
        return pathlib.Path(os.environ["ATELIER_CONFIG_DIR"])
    import platformdirs

    return pathlib.Path(platformdirs.user_config_dir("atelier"))


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` are the same file or folder: the same path after resolving
    symlinks, or (both existing) the same inode, which catches hard links too."""
    pa, pb = pathlib.Path(a).expanduser(), pathlib.Path(b).expanduser()
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return pa.resolve() == pb.resolve()


def check_not_input(output: str | os.PathLike, inputs, overwrite: bool = False, option: str = "output") -> None:
    """Refuse to write ``output`` where it would replace one of the user's inputs.

    Args:
        output: the file (or folder) about to be written.
        inputs: ``(role, path)`` pairs, e.g. ``[("content", "photo.jpg"), ("style", "s.jpg")]``;
            ``None`` paths are skipped.
        overwrite: the user asked for it (``--overwrite``): allow it.
        option: the option that gave ``output``, for the message.

    Raises:
        InputError: ``output`` is (or resolves to, symlinks and hard links included) an input.
    """
    from .errors import InputError

    if overwrite:
        return
    for role, path in inputs:
        if path is not None and same_file(output, path):
            raise InputError(f"{option} is the {role} input ({path}); writing there would destroy it; choose "
                             "another path, or add --overwrite if you mean it", output)
