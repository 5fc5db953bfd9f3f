"""Named parameter presets (exported from the studio's Explore, used by ``atelier stylize
--preset NAME``), stored as JSON files in the user config folder:
``$ATELIER_CONFIG_DIR/presets/NAME.json``, else ``platformdirs.user_config_dir("atelier")``.

A preset holds ``method`` (``adain`` or ``wct``), ``alpha`` (style strength in [0, 1]),
``style_scale`` (style image longest side relative to the output's), ``preserve_color``
(``none``, ``luminance``, ``histogram``) and optionally ``blend`` (weight of the first of two
styles in [0, 1]), plus where it came from.
"""

from __future__ import annotations

import json
import os
import pathlib
import re

from ..core.errors import InputError
from ..core.files import atomic_write

__all__ = ["NAME_PATTERN", "config_dir", "list_presets", "load_preset", "preset_path", "save_preset"]

#: Allowed preset names (also the file name): letters, digits, ``_`` and ``-``.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_KEYS = {"method", "alpha", "style_scale", "preserve_color", "blend"}


def config_dir() -> pathlib.Path:
    """``$ATELIER_CONFIG_DIR``, else the platform's user config folder for atelier."""
    if os.environ.get("ATELIER_CONFIG_DIR"):
        return pathlib.Path(os.environ["ATELIER_CONFIG_DIR"])
    import platformdirs

    return pathlib.Path(platformdirs.user_config_dir("atelier"))


def preset_path(name: str) -> pathlib.Path:
    """The file of preset ``name``.

    Raises:
        InputError: the name is not 1-64 letters, digits, ``_`` or ``-``.
    """
    if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
        raise InputError(f"preset name {name!r} is not allowed; use 1-64 letters, digits, '_' or '-'")
    return config_dir() / "presets" / f"{name}.json"


def save_preset(name: str, parameters: dict, source: str = "") -> pathlib.Path:
    """Write preset ``name`` (atomically; an existing preset of that name is replaced).

    Raises:
        InputError: a bad name, parameters other than the preset keys, or an unwritable folder.
    """
    path = preset_path(name)
    extra = set(parameters) - _KEYS
    if extra:
        raise InputError(f"preset parameters must be some of {sorted(_KEYS)}, got {sorted(extra)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as f:
        json.dump({"name": name, "parameters": dict(parameters), "source": source}, f, indent=2)
        f.write("\n")
    return path


def load_preset(name: str) -> dict:
    """The parameters of preset ``name``.

    Raises:
        InputError: a bad name, no such preset (the message lists the saved ones), or a file
            that is not a preset.
    """
    path = preset_path(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        have = ", ".join(list_presets()) or "none saved yet"
        raise InputError(f"no preset named {name!r} (presets: {have}); save one from the studio's Explore tab",
                         path) from None
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read the preset ({e})", path) from None
    params = data.get("parameters") if isinstance(data, dict) else None
    if not isinstance(params, dict) or set(params) - _KEYS:
        raise InputError("not a preset file (expected {\"parameters\": {method, alpha, ...}})", path)
    return params


def list_presets() -> list[str]:
    """Names of the saved presets, sorted."""
    d = config_dir() / "presets"
    return sorted(p.stem for p in d.glob("*.json")) if d.is_dir() else []
