"""Model cards and verified loading.

Every exported model is a float16 safetensors file with a JSON model card beside it (what
it was trained on, steps, losses, sha256 of the weights). :func:`read_verified` loads any
of them and refuses a file whose sha256 differs from its card; :func:`load_trained`
builds a feed-forward :class:`~atelier.networks.TransformerNet` from one.
"""


from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Callable, Union

import torch

from ..core.errors import InputError
from ..networks.decoders import AdaINDecoder, InversionDecoder
from ..networks.transformer import TransformerNet

__all__ = ["ADAIN_CARD_FORMAT", "CARD_FORMAT", "DECODER_CARD_FORMAT", "load_adain_decoder", "load_inversion_decoder", "load_trained", "output_paths", "read_verified"]

CARD_FORMAT = "atelier-feedforward-model"
ADAIN_CARD_FORMAT = "atelier-adain-decoder"
DECODER_CARD_FORMAT = "atelier-inversion-decoder"
PathLike = Union[str, os.PathLike]


def output_paths(out: PathLike) -> dict[str, pathlib.Path]:
    """Paths of the files of a run: ``weights`` (.safetensors), ``checkpoint`` (.ckpt),
    ``card`` (.json) and ``preview`` (.preview.png), all sharing the stem of ``out``."""
    s = os.fspath(pathlib.Path(os.fspath(out)).expanduser())
    if s.lower().endswith(".safetensors"):
        s = s[: -len(".safetensors")]
    return {"weights": pathlib.Path(s + ".safetensors"), "checkpoint": pathlib.Path(s + ".ckpt"),
            "card": pathlib.Path(s + ".json"), "preview": pathlib.Path(s + ".preview.png")}


def read_verified(path: PathLike, parse: Callable[[dict], object] = lambda card: None
                  ) -> tuple[dict, dict[str, torch.Tensor], pathlib.Path, object]:
    """Read exported weights and their model card, verifying the weights' sha256.

    Args:
        path: the ``.safetensors`` file (or its ``.json`` model card, or the common stem).
        parse: called with the card inside the card-reading checks (its KeyError, ValueError
            or TypeError is reported as an unreadable card); its result is returned.

    Returns:
        ``(card, state, weights_path, parsed)``: the card dict, the tensors (as stored,
        float16), the weights file and ``parse(card)``.

    Raises:
        InputError: naming the file: weights or card missing or unreadable, the
            weights' sha256 differs from the card's (a corrupt or modified file), or
            weights that are not finite (NaN or infinity).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    p = pathlib.Path(os.fspath(path)).expanduser()
    paths = output_paths(p.with_suffix("") if p.suffix.lower() == ".json" else p)
    weights, card_path = paths["weights"], paths["card"]
    if not weights.is_file():
        raise InputError("model weights not found", weights)
    if not card_path.is_file():
        raise InputError(f"model card {card_path.name} not found beside the weights; it is needed to verify "
                         "them (sha256)", weights)
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        expected = str(card["sha256"]).lower()
        parsed = parse(card)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"cannot read the model card ({type(e).__name__}: {e})", card_path) from None
    blob = weights.read_bytes()
    actual = hashlib.sha256(blob).hexdigest()
    if actual != expected:
        raise InputError(f"sha256 {actual[:16]}... does not match the model card's {expected[:16]}...; the file "
                         "is corrupt or was modified: download or export it again", weights)
    try:
        state = st_load(blob)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise InputError(f"cannot read the weights ({e})", weights) from None
    bad = sorted(k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if bad:
        raise InputError(f"the weights contain NaN or infinity ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); "
                         "the model diverged in training or the file is damaged: train or export it again", weights)
    return card, state, weights, parsed


def load_trained(path: PathLike, device: str | torch.device = "cpu") -> TransformerNet:
    """Load a trained network from its safetensors file, verified against its model card.

    Args:
        path: the ``.safetensors`` file (or its ``.json`` model card, or the common stem).
            The card ``<stem>.json`` must lie beside the weights.
        device: where to put the network.

    Returns:
        A float32 :class:`~atelier.networks.TransformerNet` in eval mode, with attributes
        ``card`` (the model card dict) and ``style_names`` (style file names by index).

    Raises:
        InputError: naming the file: weights or card missing or unreadable, the weights'
            sha256 differs from the card's (a corrupt or modified file: an error, never a
            warning), or the weights do not fit the architecture the card describes.
    """
    card, state, weights, (num_styles, width) = read_verified(
        path, lambda c: (int(c["architecture"]["num_styles"]), float(c["architecture"]["width"])))
    try:
        net = TransformerNet(num_styles, width)
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, ValueError) as e:
        raise InputError(f"the weights do not fit the network the model card describes ({e})", weights) from None
    net.card = card
    net.style_names = [s.get("file", str(i)) for i, s in enumerate(card.get("styles", []))]
    return net.to(device).eval()


def load_adain_decoder(path: PathLike) -> tuple[AdaINDecoder, dict, dict]:
    """Load a trained AdaIN decoder verified against its model card.

    Returns:
        ``(decoder, card, encoder)``: a float32 :class:`~atelier.networks.AdaINDecoder`, the
        model card, and the card's encoder entry (``weights``, ``pooling``).

    Raises:
        InputError: as :func:`read_verified`, or not an AdaIN decoder, or weights that do not
            fit the card's architecture.
    """
    card, state, weights, (width, enc) = read_verified(
        path, lambda c: (float(c["architecture"]["width"]), dict(c["architecture"].get("encoder") or {})))
    if card.get("format") != ADAIN_CARD_FORMAT:
        raise InputError(f"not an AdaIN decoder (model card format {card.get('format')!r}); load feed-forward "
                         "models with atelier.load_model", weights)
    try:
        decoder = AdaINDecoder(width)
        decoder.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, ValueError) as e:
        raise InputError(f"the weights do not fit the decoder the model card describes ({e})", weights) from None
    return decoder, card, enc


def load_inversion_decoder(path: PathLike, device: str | torch.device = "cpu") -> InversionDecoder:
    """Load a trained inversion decoder, verified against its model card.

    Args:
        path: the ``.safetensors`` file (or its ``.json`` card, or the common stem).
        device: where to put it.

    Returns:
        A float32 :class:`~atelier.networks.decoders.InversionDecoder` in eval mode with frozen
        parameters and the attribute ``card`` (its ``architecture.encoder`` names the encoder
        weights and pooling it was trained with).

    Raises:
        InputError: naming the file: missing or unreadable weights or card, sha256 mismatch,
            not an inversion decoder, or weights that do not fit the card.
    """
    card, state, weights, (layer, width) = read_verified(
        path, lambda c: (str(c["architecture"]["layer"]), float(c["architecture"]["width"])))
    if card.get("format") != DECODER_CARD_FORMAT:
        raise InputError(f"not an inversion decoder (model card format {card.get('format')!r})", weights)
    try:
        decoder = InversionDecoder(layer, width)
        decoder.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, ValueError) as e:
        raise InputError(f"the weights do not fit the decoder the model card describes ({e})", weights) from None
    decoder = decoder.requires_grad_(False).to(device).eval()
    decoder.card = card
    return decoder
