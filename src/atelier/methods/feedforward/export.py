"""ONNX export of the feed-forward style network, and inference with onnxruntime.

The network is :class:`atelier.networks.TransformerNet`: the image transformation
network of Johnson, Alahi & Fei-Fei (2016), "Perceptual Losses for Real-Time Style
Transfer and Super-Resolution", with the conditional instance normalization of Dumoulin,
Shlens & Kudlur (2017), "A Learned Representation for Artistic Style" (one network, many
styles, blended by mixing their normalization parameters).

An exported file runs without PyTorch or atelier, e.g. in onnxruntime (Python, C++, C#,
Java, JavaScript/web), and is dynamic in batch size, height and width.

Graph interface (every tensor float32):

* input ``image``: (N, 3, H, W), RGB in [0, 1], H and W >= 16 (any size, e.g. 257 x 383).
* input ``style_weights`` (only for networks with ``num_styles`` S > 1): (N, S), one row
  of blend weights per image. Rows must be finite and non-negative with a positive sum;
  the graph divides each row by its sum (so ``[1, 0]`` is exactly style 0 and ``[2, 2]``
  equals ``[0.5, 0.5]``) but does **not** check them: a negative weight gives a
  meaningless image and an all-zero row gives NaN. :class:`OnnxStylizer` checks them
  before running the graph.
* output ``stylized``: (N, 3, H, W), RGB in [0, 1] (a sigmoid output).

Like :class:`~atelier.networks.TransformerNet`, the graph reflection-pads the image on
the bottom/right to a multiple of 4 and crops the result back to H x W.

The model card of a trained network (``net.card``, set by
:func:`atelier.training.load_trained`) is stored as JSON in the ONNX metadata under
:data:`CARD_KEY`.

Example::

    from atelier.training.cards import load_trained
    from atelier.methods.feedforward.export import export_onnx, OnnxStylizer

    net = load_trained("starry.safetensors")
    export_onnx(net, "starry.onnx")
    out = OnnxStylizer("starry.onnx")(images)       # (N, 3, H, W) float32 in [0, 1]

Requires ``pip install onnx onnxruntime`` (imported only when these functions are called).
"""

from __future__ import annotations

import copy
import io
import json
import os
import pathlib
import warnings
from typing import Any, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import InputError
from ...core.files import atomic_write
from ...networks.transformer import MIN_SIDE, StyleWeights, TransformerNet, style_weights_matrix

__all__ = ["CARD_KEY", "DEFAULT_OPSET", "OnnxStylizer", "export_onnx", "run_onnx"]

PathLike = Union[str, os.PathLike]

#: Key of the model card JSON in the ONNX ``metadata_props``.
CARD_KEY = "atelier_model_card"
#: Default ONNX opset of :func:`export_onnx`.
DEFAULT_OPSET = 17
#: Smallest opset accepted (dynamic Pad/Slice/Resize inputs need >= 11; 13 is well tested).
MIN_OPSET = 13

_INSTALL = "pip install onnx onnxruntime"


class _ExportWrapper(nn.Module):
    """Traceable forward pass of a :class:`TransformerNet` for ONNX export.

    Same computation as :meth:`TransformerNet.forward`, written so that the trace does
    not bake in sizes or Python-side checks:

    * style weights are normalized with tensor ops (``w / w.sum(1)``), not validated;
    * the image is always reflection-padded by 3 on the bottom/right and then sliced to
      the next multiple of 4 (``(H + 3) // 4 * 4``); reflecting 3 pixels and keeping the
      first ``(-H) % 4`` of them is exactly a reflection pad by ``(-H) % 4``, and the
      pad amount is then a constant while the slice end follows the dynamic size;
    * the result is sliced back to (H, W) with the dynamic input size.
    """

    def __init__(self, net: TransformerNet):
        super().__init__()
        self.net = net
        self.multi = net.num_styles > 1

    def forward(self, image: torch.Tensor, style_weights: torch.Tensor | None = None) -> torch.Tensor:
        """(N, 3, H, W) float32 in [0, 1] (+ (N, S) weights) -> (N, 3, H, W) float32 in [0, 1]."""
        net, f = self.net, TransformerNet.FACTOR
        if self.multi:
            sw = style_weights / style_weights.sum(dim=1, keepdim=True)
        else:
            sw = torch.ones(1, 1, dtype=image.dtype)  # broadcast over the batch by the CIN
        h, w = image.shape[2], image.shape[3]
        x = F.pad(image, (0, f - 1, 0, f - 1), mode="reflect")
        x = x[:, :, : (h + f - 1) // f * f, : (w + f - 1) // f * f]
        x = F.relu(net.norm1(net.conv1(x), sw))
        x = F.relu(net.norm2(net.conv2(x), sw))
        x = F.relu(net.norm3(net.conv3(x), sw))
        for block in net.res:
            x = block(x, sw)
        x = F.relu(net.norm4(net.up1(x), sw))
        x = F.relu(net.norm5(net.up2(x), sw))
        x = torch.sigmoid(net.conv_out(x))
        return x[:, :, :h, :w]


def _import_onnx(path: PathLike):
    try:
        import onnx
    except ImportError:
        raise InputError(f"ONNX export needs the onnx package, which is not installed; {_INSTALL}", path) from None
    return onnx


def _import_ort(path: PathLike):
    try:
        import onnxruntime
    except ImportError:
        raise InputError(f"running an ONNX model needs onnxruntime, which is not installed; {_INSTALL}",
                         path) from None
    return onnxruntime


def export_onnx(net: TransformerNet, path: PathLike, opset: int = DEFAULT_OPSET) -> pathlib.Path:
    """Export a feed-forward style network to an ONNX file.

    The network is :class:`~atelier.networks.TransformerNet` (Johnson et al. 2016, with
    the conditional instance norm of Dumoulin et al. 2017). The graph is dynamic in
    batch size N, height H and width W (any H, W >= 16, odd sizes included):

    * input ``image``: float32 (N, 3, H, W), RGB in [0, 1];
    * input ``style_weights``: float32 (N, S), only when ``net.num_styles`` S > 1; rows
      must be non-negative with a positive sum and are normalized to sum 1 inside the
      graph (not checked there; see the module docstring);
    * output ``stylized``: float32 (N, 3, H, W), RGB in [0, 1].

    The export uses the TorchScript-based exporter (``torch.onnx.export(...,
    dynamo=False)``); it needs only ``onnx``, not ``onnxscript``. The network is copied
    to the CPU in float32 eval mode first; ``net`` itself is not changed. If ``net`` has
    a ``card`` attribute (a model card dict, as set by
    :func:`atelier.training.load_trained`) its JSON is stored in the model's
    ``metadata_props`` under :data:`CARD_KEY`.

    The file is written atomically: to a temporary file in the same directory, then
    renamed over ``path``; on any error no file (and no temporary file) is left.

    Args:
        net: the network to export.
        path: the ``.onnx`` file to write (replaced if it exists). Its directory must exist.
        opset: ONNX opset version (>= 13; default 17).

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        InputError: naming ``path``: its directory does not exist or is not writable,
            the file cannot be written, or ``onnx`` is not installed.
        TypeError: ``net`` is not a :class:`~atelier.networks.TransformerNet`.
        ValueError: ``opset`` is below 13.
    """
    p = pathlib.Path(os.fspath(path)).expanduser()
    if not isinstance(net, TransformerNet):
        raise TypeError(f"net must be an atelier TransformerNet, got {type(net).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset must be an integer >= {MIN_OPSET}, got {opset!r}")
    parent = p.parent
    if not parent.is_dir():
        raise InputError(f"the output directory {os.fspath(parent)} does not exist; create it first", p)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"the output directory {os.fspath(parent)} is not writable", p)
    if p.is_dir():
        raise InputError("is a directory; give the path of the .onnx file to write", p)
    onnx = _import_onnx(p)

    card = getattr(net, "card", None)
    model = _ExportWrapper(copy.deepcopy(net).to(device="cpu", dtype=torch.float32).eval()).eval()
    multi = net.num_styles > 1
    args: tuple[torch.Tensor, ...] = (torch.rand(1, 3, 2 * MIN_SIDE + 3, 2 * MIN_SIDE + 1),)
    names = ["image"]
    axes: dict[str, dict[int, str]] = {"image": {0: "N", 2: "H", 3: "W"}, "stylized": {0: "N", 2: "H", 3: "W"}}
    if multi:
        args += (torch.full((1, net.num_styles), 1.0 / net.num_styles),)
        names.append("style_weights")
        axes["style_weights"] = {0: "N"}

    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about the shape checks inside the network (they hold for every
        # input the graph accepts) and torch about the legacy exporter; neither matters here.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", message=r".*(Constant folding|instance_norm)")
        torch.onnx.export(model, args, buf, dynamo=False, opset_version=opset, input_names=names,
                          output_names=["stylized"], dynamic_axes=axes, do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    proto.doc_string = (f"atelier TransformerNet (Johnson et al. 2016; conditional instance norm, Dumoulin et "
                        f"al. 2017), {net.num_styles} style(s): image float32 (N,3,H,W) RGB in [0,1]"
                        + (f", style_weights float32 (N,{net.num_styles}) non-negative rows (normalized "
                           "to sum 1)" if multi else "")
                        + " -> stylized float32 (N,3,H,W) in [0,1]; H, W >= 16")
    meta = {"atelier_num_styles": str(net.num_styles), "atelier_width": repr(float(net.width))}
    if card is not None:
        meta[CARD_KEY] = json.dumps(card, ensure_ascii=False, default=str)
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()

    with atomic_write(p) as fh:
        fh.write(data)
    return p


class OnnxStylizer:
    """Run an ONNX file written by :func:`export_onnx` with onnxruntime.

    The network in the file is the feed-forward network of Johnson et al. (2016) with
    conditional instance norm (Dumoulin et al. 2017); see :mod:`atelier.methods.feedforward.export`.

    Args:
        path: the ``.onnx`` file.
        providers: onnxruntime execution providers in order of preference; default
            ``["CUDAExecutionProvider", "CPUExecutionProvider"]`` when CUDA is available,
            else ``["CPUExecutionProvider"]``.
        threads: intra-op threads of the session (``None``: onnxruntime's default).

    Attributes:
        path: the file as a :class:`pathlib.Path`.
        num_styles: number of styles S (1 when the graph has no ``style_weights`` input).
        card: the model card dict stored in the file, or ``None``.
        style_names: style names from the card (``"file"`` of each style), or ``[]``.
        session: the :class:`onnxruntime.InferenceSession`.

    Raises:
        InputError: naming ``path``: the file is missing, is not a valid ONNX model, is
            not an atelier export (no ``image`` input / ``stylized`` output), or
            onnxruntime is not installed.
    """

    def __init__(self, path: PathLike, providers: Sequence[str] | None = None, threads: int | None = None):
        p = pathlib.Path(os.fspath(path)).expanduser()
        self.path = p
        if not p.is_file():
            raise InputError("ONNX model not found" if not p.exists() else "is not a file", p)
        ort = _import_ort(p)
        if providers is None:
            available = ort.get_available_providers()
            providers = [x for x in ("CUDAExecutionProvider",) if x in available] + ["CPUExecutionProvider"]
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(os.fspath(p), sess_options=opts, providers=list(providers))
        except Exception as e:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise InputError(f"not a valid ONNX model or cannot be loaded ({type(e).__name__}: {msg[:300]})",
                             p) from None
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if "image" not in inputs or "stylized" not in outputs or not set(inputs) <= {"image", "style_weights"}:
            raise InputError(f"not an atelier style network export (inputs {sorted(inputs)}, outputs {outputs}; "
                             "expected 'image' [+ 'style_weights'] -> 'stylized'); export it with "
                             "atelier.methods.feedforward.export.export_onnx", p)
        if "style_weights" in inputs:
            s = inputs["style_weights"].shape[1]
            if not isinstance(s, int) or s < 1:
                raise InputError(f"style_weights input has no fixed number of styles (shape "
                                 f"{inputs['style_weights'].shape})", p)
            self.num_styles = s
        else:
            self.num_styles = 1
        meta = self.session.get_modelmeta().custom_metadata_map or {}
        self.card: dict[str, Any] | None = None
        if CARD_KEY in meta:
            try:
                self.card = json.loads(meta[CARD_KEY])
            except ValueError:
                self.card = None
        styles = (self.card or {}).get("styles", []) if isinstance(self.card, dict) else []
        self.style_names = [s.get("file", str(i)) if isinstance(s, dict) else str(s) for i, s in enumerate(styles)]

    def __repr__(self) -> str:
        return f"OnnxStylizer({os.fspath(self.path)!r}, num_styles={self.num_styles})"

    def __call__(self, image: torch.Tensor | np.ndarray, style_weights: StyleWeights = None) -> torch.Tensor:
        """Stylize a batch of images.

        Args:
            image: float (N, 3, H, W) torch tensor or numpy array, RGB in [0, 1], H and
                W >= 16 (any size; cast to float32).
            style_weights: as for :class:`~atelier.networks.TransformerNet`: ``None``
                (style 0), a style index, S blend weights for the whole batch, or a
                (N, S) matrix; checked (finite, non-negative, positive row sums) and
                normalized to rows summing to 1. Ignored-but-checked for S == 1.

        Returns:
            float32 CPU torch tensor (N, 3, H, W), RGB in [0, 1].

        Raises:
            ValueError: ``image`` is not a floating (N, 3, H, W) array with sides >= 16,
                or ``style_weights`` is invalid.
        """
        if isinstance(image, torch.Tensor):
            if not image.is_floating_point():
                raise ValueError(f"image must be floating point in [0, 1], got {image.dtype}")
            x = image.detach().to("cpu", torch.float32).contiguous().numpy()
        elif isinstance(image, np.ndarray):
            if not np.issubdtype(image.dtype, np.floating):
                raise ValueError(f"image must be floating point in [0, 1], got {image.dtype}")
            x = np.ascontiguousarray(image, dtype=np.float32)
        else:
            raise ValueError(f"image must be a torch tensor or numpy array, got {type(image).__name__}")
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"image must have shape (N, 3, H, W), got {tuple(x.shape)}")
        n, _, h, w = x.shape
        if h < MIN_SIDE or w < MIN_SIDE:
            raise ValueError(f"image sides must be at least {MIN_SIDE} px, got {h}x{w}")
        sw = style_weights_matrix(style_weights, n, self.num_styles)
        feeds = {"image": x}
        if self.num_styles > 1:
            feeds["style_weights"] = np.ascontiguousarray(sw.numpy(), dtype=np.float32)
        out = self.session.run(["stylized"], feeds)[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32))


def run_onnx(path: PathLike, image: torch.Tensor | np.ndarray, style_weights: StyleWeights = None,
             providers: Sequence[str] | None = None) -> torch.Tensor:
    """Stylize ``image`` with an ONNX file from :func:`export_onnx` (one-shot :class:`OnnxStylizer`).

    Args:
        path: the ``.onnx`` file.
        image: float (N, 3, H, W) torch tensor or numpy array, RGB in [0, 1], H, W >= 16.
        style_weights: ``None`` (style 0), an index, S weights or a (N, S) matrix (see
            :meth:`OnnxStylizer.__call__`).
        providers: onnxruntime execution providers (see :class:`OnnxStylizer`).

    Returns:
        float32 CPU torch tensor (N, 3, H, W), RGB in [0, 1].

    Raises:
        InputError: naming ``path``: missing or invalid ONNX file, or onnxruntime not installed.
        ValueError: invalid ``image`` or ``style_weights``.
    """
    return OnnxStylizer(path, providers=providers)(image, style_weights)
