"""Shipped models by name: feed-forward networks (``models/<name>.safetensors``) and the AdaIN
decoder (``models/adain/decoder.safetensors``), each with its JSON model card. ``list``,
``card``, ``path`` and ``load`` work for every kind; loading is sha256-verified
(:mod:`atelier.training.cards`).
"""

from __future__ import annotations

import json
import os
import pathlib
from importlib import resources
from typing import Optional, Union


from ..core.errors import InputError

__all__ = ["ADAIN_DECODERS", "DEFAULT_DECODER", "WEIGHT_KINDS", "decoder_path", "list_models", "model_card",
           "model_path", "shipped_dir", "shipped_weights"]

PathLike = Union[str, os.PathLike]
#: Name of the shipped AdaIN decoder (the default of ``--method adain``).
DEFAULT_DECODER = "adain"
#: Shipped AdaIN decoders by name: the default (width 0.5, fast on CPUs) and the paper's width.
ADAIN_DECODERS = {"adain": "decoder.safetensors", "adain-w1": "decoder-w1.safetensors"}


#: The shipped weights by kind: the folder under the package's ``models/`` (feed-forward models lie
#: at its top), and the model-card format of the files in it.
WEIGHT_KINDS = {
    "feedforward": ("", "atelier-feedforward-model"),
    "adain": ("adain", "atelier-adain-decoder"),
    "wct": ("wct", "atelier-inversion-decoder"),
    "sketch": ("sketch", "atelier-contour-net"),
    "gan": ("gan", "atelier-dcgan-generator"),
    "analysis": ("analysis", "atelier-style-whitening"),
    "paint": ("paint", "atelier-paint-actor"),
}


def shipped_dir(kind: str = "feedforward") -> pathlib.Path:
    """The one place shipped weights are found: the package's ``models/`` folder for
    ``kind`` (a key of :data:`WEIGHT_KINDS`). Raises ValueError for an unknown kind."""
    if kind not in WEIGHT_KINDS:
        raise ValueError(f"weight kind must be one of {', '.join(WEIGHT_KINDS)}, got {kind!r}")
    return pathlib.Path(str(resources.files("atelier") / "models")) / WEIGHT_KINDS[kind][0]


def _models_dir() -> pathlib.Path:
    return shipped_dir("feedforward")


def shipped_weights() -> list[dict]:
    """Every shipped weights file with its model card, of every kind: ``{"kind", "name",
    "path", "card"}`` (``card``: the parsed JSON, or None when it is missing or unreadable;
    the sha256 is checked when a file is loaded, not here)."""
    out = []
    for kind in WEIGHT_KINDS:
        d = shipped_dir(kind)
        for p in sorted(d.glob("*.safetensors")) if d.is_dir() else []:
            try:
                card = json.loads(p.with_suffix(".json").read_text())
            except (OSError, ValueError):
                card = None
            out.append({"kind": kind, "name": p.stem, "path": p, "card": card})
    return out


def list_models() -> list[str]:
    """Names of the models shipped with the package, sorted (e.g. ``"starry_night"``,
    ``"multi10"``); each is loadable with :func:`load_model`."""
    d = _models_dir()
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.safetensors") if p.with_suffix(".json").is_file())


def model_path(name_or_path: PathLike) -> pathlib.Path:
    """The ``.safetensors`` file of a shipped model name or of a path.

    A string without a path separator or suffix that names a shipped model resolves to the
    package's copy; anything else is taken as a path (``.safetensors``, ``.json`` card or
    the common stem).

    Raises:
        InputError: neither a shipped model nor an existing file; the message lists the
            shipped names.
    """
    s = os.fspath(name_or_path)
    if not s.strip():
        raise InputError(f"no model given; pass a shipped model name ({', '.join(list_models())}) or a "
                         ".safetensors file")
    if s in list_models():
        return _models_dir() / f"{s}.safetensors"
    p = pathlib.Path(s).expanduser()
    for cand in (p, p.with_suffix(".safetensors"), pathlib.Path(s + ".safetensors")):
        if cand.is_file():
            return cand.with_suffix(".safetensors") if cand.suffix.lower() == ".json" else cand
    names = ", ".join(list_models()) or "none"
    raise InputError(f"no such model file or shipped model name (shipped models: {names}); run 'atelier models' "
                     "to list them", p)


def model_card(name_or_path: PathLike) -> dict:
    """The JSON model card of a shipped model or a trained model file (not verified; use
    :func:`load_model` for the sha256 check).

    Raises:
        InputError: unknown model, or a card that is missing or not JSON.
    """
    card = model_path(name_or_path).with_suffix(".json")
    try:
        return json.loads(card.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("model card not found beside the weights", card) from None
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read the model card ({e})", card) from None


def decoder_path(name_or_path: Optional[PathLike] = None) -> pathlib.Path:
    """The ``.safetensors`` file of a shipped AdaIN decoder (``None`` or ``"adain"``: the default,
    width 0.5; ``"adain-w1"``: the paper's width 1.0) or of a path.

    Raises:
        InputError: the file does not exist (or the package was installed without its decoder).
    """
    name = DEFAULT_DECODER if name_or_path is None else os.fspath(name_or_path)
    if name in ADAIN_DECODERS:
        p = shipped_dir("adain") / ADAIN_DECODERS[name]
        if not p.is_file():
            raise InputError("the shipped AdaIN decoder is missing from this installation; reinstall atelier "
                             "or pass a decoder trained with 'atelier train-adain'", p)
        return p
    p = pathlib.Path(os.fspath(name_or_path)).expanduser()
    for cand in (p, p.with_suffix(".safetensors"), pathlib.Path(os.fspath(p) + ".safetensors")):
        if cand.is_file():
            return cand.with_suffix(".safetensors") if cand.suffix.lower() == ".json" else cand
    raise InputError(f"no such AdaIN decoder file (the shipped ones: {', '.join(ADAIN_DECODERS)})", p)
