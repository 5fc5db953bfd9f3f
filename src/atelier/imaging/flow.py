"""Optical flow for video: estimation (OpenCV), backward warping, occlusion masks, .flo files.

Conventions (the same as OpenCV's ``calcOpticalFlow*(prev=a, next=b)`` and Middlebury/Sintel):

- A *flow* is a float32 array of shape ``(H, W, 2)``: ``flow[y, x] = (dx, dy)`` in pixels
  (x to the right, y down). The flow *from a to b* satisfies ``a(x) ~ b(x + flow(x))``: it
  says where each pixel of ``a`` went in ``b``.
- :func:`warp` is a *backward* warp: ``warp(b, flow_ab)(x) = b(x + flow_ab(x))``, so
  ``warp(b, FlowEstimator()(a, b))`` is ``b`` brought into ``a``'s geometry (it looks like
  ``a`` wherever the flow is right and nothing was occluded).
- :func:`consistency_mask` ``(flow_ab, flow_ba)`` marks, in ``a``'s geometry, the pixels
  whose flow to ``b`` can be trusted (Ruder et al. 2016/2018).

So for a video with frames ``f[t]``, the previous (stylized) frame ``s[t-1]`` is carried into
frame ``t`` with ``warp(s[t-1], FlowEstimator()(f[t], f[t-1]))`` and weighted with
``consistency_mask(flow(f[t], f[t-1]), flow(f[t-1], f[t]))``; the flow is computed on the
*input* frames, never on stylized ones.

The flow itself is OpenCV's: DIS (Kroeger et al., "Fast Optical Flow using Dense Inverse
Search", ECCV 2016; the default) or Farneback ("Two-Frame Motion Estimation Based on
Polynomial Expansion", SCIA 2003). Accuracy and speed on Sintel: ``docs/benchmarks.md``.
"""

from __future__ import annotations

import os
from typing import Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import InputError

__all__ = ["FlowEstimator", "consistency_mask", "endpoint_error", "photometric_mask", "read_flo", "warp"]

#: Middlebury .flo tag: the float32 202021.25, the bytes "PIEH" in little-endian order.
FLO_TAG = 202021.25
#: Flow components above this magnitude mean "unknown" in Middlebury files.
FLO_UNKNOWN = 1e9
#: The largest flow field :func:`read_flo` accepts (pixels), against corrupt headers.
FLO_MAX_PIXELS = 100_000_000

#: ``cv2.DISOpticalFlow`` presets by name.
DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
#: Farneback parameters (OpenCV's documented example values, 5 pyramid levels).
FARNEBACK = dict(numLevels=5, pyrScale=0.5, fastPyramids=False, winSize=15, numIters=3, polyN=5,
                 polySigma=1.2, flags=0)

# Ruder et al.'s thresholds (paper, section 3.1; the consistencyChecker of artistic-videos).
_DISOCCLUSION_REL, _DISOCCLUSION_ABS = 0.01, 0.5
_BOUNDARY_REL, _BOUNDARY_ABS = 0.01, 0.002

#: :func:`photometric_mask`: colour differences (mean over RGB, [0, 1] units) at which trust starts
#: to fall and reaches 0 (about 8 and 20 grey levels in 255). Chosen on the Sintel clips with true
#: flow (``benchmarks/ghosting.py``): it halves the ghosts in truly occluded pixels at the same
#: warping error near motion boundaries; 0.02-0.05 removed more ghosts but let more flicker in.
PHOTOMETRIC_LOW, PHOTOMETRIC_HIGH = 0.03, 0.08

FrameLike = Union[np.ndarray, torch.Tensor]
FlowLike = Union[np.ndarray, torch.Tensor]


def _grey(frame: FrameLike, name: str) -> np.ndarray:
    """A frame as a contiguous uint8 (H, W) grey image (BT.601 luma, as cv2's RGB2GRAY)."""
    if isinstance(frame, torch.Tensor):
        t = frame.detach()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] not in (1, 3) or not t.is_floating_point():
            raise InputError(f"{name}: expected a float tensor (1, 3, H, W) or (3, H, W) in [0, 1], "
                             f"got {t.dtype} {tuple(frame.shape)}")
        t = t.float().clamp(0, 1)
        if t.shape[0] == 3:
            t = 0.299 * t[0] + 0.587 * t[1] + 0.114 * t[2]
        else:
            t = t[0]
        return np.ascontiguousarray((t * 255).round().to(torch.uint8).cpu().numpy())
    if isinstance(frame, np.ndarray):
        a = frame
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[..., 0]
        if a.dtype != np.uint8:
            if not np.issubdtype(a.dtype, np.floating):
                raise InputError(f"{name}: expected a uint8 array (H, W, 3) or a float one in [0, 1], got {a.dtype}")
            a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
        if a.ndim == 3 and a.shape[2] == 3:
            return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)
        if a.ndim == 2:
            return np.ascontiguousarray(a)
        raise InputError(f"{name}: expected an RGB array (H, W, 3) or a grey one (H, W), got shape {frame.shape}")
    raise InputError(f"{name}: expected a numpy array or a torch tensor, got {type(frame).__name__}")


class FlowEstimator:
    """Dense optical flow between two frames with OpenCV (DIS by default, or Farneback).

    One estimator keeps one OpenCV object and reuses it across calls (it is not thread-safe:
    use one estimator per thread). Frames are converted to 8-bit grey inside.

    Args:
        method: ``"dis"`` (``cv2.DISOpticalFlow``, Kroeger et al. 2016) or ``"farneback"``
            (``cv2.FarnebackOpticalFlow`` with :data:`FARNEBACK`).
        preset: for DIS, ``"ultrafast"``, ``"fast"`` or ``"medium"`` (OpenCV's presets: more
            patch iterations and a finer last scale each step; ignored for Farneback).

    Raises:
        ValueError: an unknown method or preset (an :class:`InputError`).

    Example:
        >>> import numpy as np
        >>> frame_prev = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
        >>> frame_t = np.roll(frame_prev, 3, axis=1)  # the picture moved 3 px to the right
        >>> flow = FlowEstimator()(frame_t, frame_prev)  # (H, W, 2), frame_t(x) ~ frame_prev(x + flow)
        >>> flow.shape, round(float(np.median(flow[16:48, 16:80, 0])))
        ((64, 96, 2), -3)
    """

    def __init__(self, method: str = "dis", preset: str = "medium"):
        self.method, self.preset = method, preset
        if method == "dis":
            if preset not in DIS_PRESETS:
                raise InputError(f"unknown DIS preset {preset!r}; use one of {', '.join(DIS_PRESETS)}")
            self._cv = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
        elif method == "farneback":
            self._cv = cv2.FarnebackOpticalFlow_create(**FARNEBACK)
        else:
            raise InputError(f"unknown optical flow method {method!r}; use 'dis' or 'farneback'")

    def __repr__(self) -> str:
        return f"FlowEstimator(method={self.method!r}, preset={self.preset!r})"

    def __call__(self, a: FrameLike, b: FrameLike) -> np.ndarray:
        """The flow from ``a`` to ``b``.

        Args:
            a, b: frames of the same size: uint8 RGB arrays (H, W, 3) (or grey (H, W)), float
                arrays (H, W, 3) in [0, 1], or float tensors (1, 3, H, W) / (3, H, W) in [0, 1]
                (any device; copied to the CPU).

        Returns:
            float32 array (H, W, 2), (dx, dy) in pixels, with ``a(x) ~ b(x + flow(x))``.

        Raises:
            InputError: an unsupported type or shape, or frames of different sizes.
        """
        ga, gb = _grey(a, "a"), _grey(b, "b")
        if ga.shape != gb.shape:
            raise InputError(f"the two frames differ in size: {ga.shape[1]}x{ga.shape[0]} and "
                             f"{gb.shape[1]}x{gb.shape[0]}; resize them to one size first")
        flow = self._cv.calc(ga, gb, None)
        return np.ascontiguousarray(flow, dtype=np.float32)


def _flow_grid_layout(flow: FlowLike, h: int, w: int, device) -> torch.Tensor:
    """A flow as a contiguous float32 tensor (N, H, W, 2) on ``device`` (grid_sample's layout)."""
    if isinstance(flow, np.ndarray):
        if flow.ndim != 3 or flow.shape[2] != 2:
            raise InputError(f"a numpy flow must be (H, W, 2), got shape {flow.shape}")
        f = torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32))[None]
    elif isinstance(flow, torch.Tensor):
        if flow.ndim == 3 and flow.shape[2] == 2:
            f = flow[None]
        elif flow.ndim == 4 and flow.shape[1] == 2:
            f = flow.permute(0, 2, 3, 1)
        else:
            raise InputError(f"a flow tensor must be (N, 2, H, W) or (H, W, 2), got {tuple(flow.shape)}")
    else:
        raise InputError(f"a flow must be a numpy array or a torch tensor, got {type(flow).__name__}")
    if tuple(f.shape[1:3]) != (h, w):
        raise InputError(f"the flow is {f.shape[2]}x{f.shape[1]} but the image is {w}x{h}")
    return f.detach().to(device=device, dtype=torch.float32).contiguous()


def warp(image: torch.Tensor, flow: FlowLike) -> torch.Tensor:
    """Backward warp: ``out(x) = image(x + flow(x))``, bilinear, border pixels replicated.

    With ``flow = FlowEstimator()(a, b)`` and ``image`` = ``b`` (or anything in ``b``'s
    geometry, e.g. ``b`` stylized), the result is in ``a``'s geometry. Positions outside the
    image take the nearest border pixel (use :func:`consistency_mask` to ignore them).

    Args:
        image: float tensor (N, C, H, W) (any float dtype and device).
        flow: (dx, dy) in pixels: numpy (H, W, 2), or a tensor (H, W, 2) or (N, 2, H, W)
            (a flow of batch 1 is used for every image).

    Returns:
        tensor of the same shape, dtype and device as ``image``; differentiable in ``image``.

    Raises:
        InputError: shapes that do not match, or an image that is not a 4-D float tensor.
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or not image.is_floating_point():
        what = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"warp expects a float image tensor (N, C, H, W), got {what}")
    n, _, h, w = image.shape
    f = _flow_grid_layout(flow, h, w, image.device)
    if f.shape[0] not in (1, n):
        raise InputError(f"the flow has batch {f.shape[0]} but the image has batch {n}")
    x = image if image.dtype in (torch.float32, torch.float64) else image.float()
    # sampling positions x + flow(x), normalized so that -1 and +1 are the centres of the first
    # and last pixels (align_corners=True)
    base = torch.stack(torch.meshgrid(torch.arange(w, device=x.device, dtype=x.dtype),
                                      torch.arange(h, device=x.device, dtype=x.dtype), indexing="xy"), dim=-1)
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=x.device, dtype=x.dtype)
    grid = ((f.to(x.dtype) + base) * scale - 1.0).expand(n, h, w, 2)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.to(image.dtype)


def _flow_numpy(flow: FlowLike, name: str) -> np.ndarray:
    if isinstance(flow, torch.Tensor):
        t = flow.detach().float().cpu()
        if t.ndim == 4 and t.shape[0] == 1 and t.shape[1] == 2:
            t = t[0].permute(1, 2, 0)
        flow = t.numpy()
    if not isinstance(flow, np.ndarray) or flow.ndim != 3 or flow.shape[2] != 2:
        what = getattr(flow, "shape", type(flow).__name__)
        raise InputError(f"{name}: expected a flow (H, W, 2) (or a tensor (1, 2, H, W)), got {what}")
    return np.ascontiguousarray(flow, dtype=np.float32)


_DIFF_X = np.array([[-0.5, 0.0, 0.5]], np.float32)  # central difference (f[i+1] - f[i-1]) / 2


def consistency_mask(flow_ab: FlowLike, flow_ba: FlowLike) -> np.ndarray:
    """Where the flow from ``a`` to ``b`` is reliable (Ruder, Dosovitskiy and Brox, "Artistic
    Style Transfer for Videos", GCPR 2016, section 3.1; IJCV 2018, "... and Spherical Images").

    For each pixel ``x`` of ``a``, with ``w = flow_ab(x)`` and ``w~ = flow_ba(x + w)`` (the
    backward flow sampled bilinearly where ``x`` lands in ``b``), the mask is 0 when any of:

    1. *leaves the frame*: ``x + w`` is outside ``[0, W-1] x [0, H-1]``, nothing in ``b`` to
       take (the reference consistencyChecker also rejects landings exactly on the last column
       or row, for want of a right/lower neighbour in its lookup; here they count as inside);
    2. *disocclusion* (forward and backward flow disagree):
       ``|w + w~|^2 > 0.01 (|w|^2 + |w~|^2) + 0.5``;
    3. *motion boundary*: ``|grad u|^2 + |grad v|^2 > 0.01 |w|^2 + 0.002``, with ``(u, v) = w``
       and the gradients central differences ``(f[i+1] - f[i-1]) / 2`` (border replicated);

    and 1 elsewhere. (The reference code uses ``>=`` in 2, the paper ``>``.) Unlike the
    reference code, the mask is not blurred afterwards (which there
    spreads occlusions by about a pixel into soft weights): it stays binary. The bilinear sample
    of ``w~`` uses ``cv2.remap`` (weights quantized to 1/32 pixel, far below the 0.5 px^2 slack).

    Args:
        flow_ab: the flow from ``a`` to ``b``, (H, W, 2) in pixels (numpy, or a tensor
            (H, W, 2) / (1, 2, H, W)), e.g. ``FlowEstimator()(a, b)``.
        flow_ba: the flow from ``b`` to ``a``, the same shape.

    Returns:
        float32 array (H, W) in {0, 1}, in ``a``'s geometry: 1 = reliable.

    Raises:
        InputError: a flow of the wrong shape, or two flows of different sizes.
    """
    wf, wb = _flow_numpy(flow_ab, "flow_ab"), _flow_numpy(flow_ba, "flow_ba")
    if wf.shape != wb.shape:
        raise InputError(f"the two flows differ in size: {wf.shape[1]}x{wf.shape[0]} and {wb.shape[1]}x{wb.shape[0]}")
    h, w = wf.shape[:2]
    u, v = cv2.split(wf)  # contiguous planes: numpy is slow on a last axis of 2
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    tx, ty = xs + u, ys + v
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    bu, bv = cv2.split(cv2.remap(wb, tx, ty, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    fwd2 = u * u + v * v
    disoccluded = np.square(u + bu) + np.square(v + bv) > _DISOCCLUSION_REL * (fwd2 + bu * bu + bv * bv) + _DISOCCLUSION_ABS
    grad2 = sum(np.square(cv2.filter2D(c, -1, k, borderType=cv2.BORDER_REPLICATE))
                for c in (u, v) for k in (_DIFF_X, _DIFF_X.T))
    boundary = grad2 > _BOUNDARY_REL * fwd2 + _BOUNDARY_ABS
    return (inside & ~disoccluded & ~boundary).astype(np.float32)


def photometric_mask(frame: torch.Tensor, warped_previous: torch.Tensor, low: float = PHOTOMETRIC_LOW,
                     high: float = PHOTOMETRIC_HIGH) -> torch.Tensor:
    """Trust in the flow from how well it explains the *input* frames: where the previous input
    frame, warped by the flow into this one, differs from this frame, the flow is wrong (a limb
    that DIS dragged along with the background, a shadow, a disocclusion both flows agree on),
    and whatever the previous *output* would bring there is a ghost.

    The weight is 1 where the colour difference ``d = mean_c |frame - warped_previous|`` is at
    most ``low``, 0 from ``high`` on, linear between (soft, so a pixel near the threshold does not
    switch on and off from frame to frame). It multiplies :func:`consistency_mask`, which cannot
    see flow errors that the forward and backward flows make alike. It tests the flow against
    the brightness-constancy assumption optical flow rests on; Ruder et al. (2016) do not use it,
    it and its thresholds (:data:`PHOTOMETRIC_LOW`, :data:`PHOTOMETRIC_HIGH`) are our addition,
    measured in ``benchmarks/ghosting.py``.

    Args:
        frame: float tensor (1, 3, H, W), RGB in [0, 1]: the input frame t.
        warped_previous: the input frame t-1 warped into frame t (``warp(prev, flow_t_to_prev)``),
            the same shape.
        low, high: the thresholds, ``0 <= low < high``, in [0, 1] colour units.

    Returns:
        float32 tensor (1, 1, H, W) in [0, 1], on ``frame``'s device: 1 = the flow explains the pixel.

    Raises:
        InputError: shapes that differ, or thresholds out of order.
    """
    if frame.shape != warped_previous.shape or frame.ndim != 4:
        raise InputError(f"frame {tuple(frame.shape)} and warped previous frame {tuple(warped_previous.shape)} "
                         "must be the same (N, 3, H, W)")
    if not 0 <= low < high:
        raise InputError(f"photometric thresholds must satisfy 0 <= low < high, not {low}, {high}")
    d = (frame.float() - warped_previous.float().to(frame.device)).abs().mean(dim=1, keepdim=True)
    return (1 - (d - low) / (high - low)).clamp(0, 1)


def read_flo(path: Union[str, os.PathLike]) -> np.ndarray:
    """Read a Middlebury ``.flo`` file (as written for Middlebury and MPI-Sintel ground truth).

    Format: the float32 tag 202021.25, int32 width, int32 height, then ``height x width``
    row-major (u, v) float32 pairs in pixels, all little-endian. Nothing else may follow.

    Args:
        path: the file.

    Returns:
        float32 array (H, W, 2), (dx, dy) in pixels. Components above 1e9 mean "unknown"
        (Middlebury); :func:`endpoint_error` skips those pixels.

    Raises:
        InputError: the file is missing or unreadable, has the wrong tag, an impossible size,
            or is truncated or too long; the message names the file.
    """
    try:
        with open(path, "rb") as f:
            header = f.read(12)
            if len(header) < 12:
                raise InputError(f"not a Middlebury .flo file: {len(header)} bytes, shorter than the 12-byte header", path)
            tag = float(np.frombuffer(header, "<f4", 1)[0])
            if tag != FLO_TAG:
                raise InputError(f"not a Middlebury .flo file: its tag is {tag!r}, not {FLO_TAG}", path)
            w, h = (int(v) for v in np.frombuffer(header, "<i4", 2, offset=4))
            if w < 1 or h < 1 or w * h > FLO_MAX_PIXELS:
                raise InputError(f"bad .flo header: size {w}x{h}", path)
            need = 8 * w * h
            body = f.read(need + 1)
    except FileNotFoundError:
        raise InputError("no such .flo file", path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a .flo file", path) from None
    except OSError as e:
        raise InputError(f"cannot read the .flo file: {e.strerror or e}", path) from None
    if len(body) != need:
        problem = "truncated" if len(body) < need else "longer than its header says"
        raise InputError(f"{problem}: a {w}x{h} flow needs {need + 12} bytes", path)
    return np.frombuffer(body, "<f4").reshape(h, w, 2).astype(np.float32)


def endpoint_error(flow: FlowLike, gt: FlowLike, valid=None) -> float:
    """Mean end-point error: the mean over valid pixels of ``|flow(x) - gt(x)|`` (Euclidean).

    Args:
        flow, gt: (H, W, 2) flows in pixels (numpy, or tensors (H, W, 2) / (1, 2, H, W)).
        valid: optional boolean (or 0/1) array (H, W): the pixels to average over. Pixels
            where ``gt`` is unknown (not finite or above 1e9) are always skipped.

    Returns:
        EPE in pixels (float).

    Raises:
        InputError: shapes differ, or no pixel is left to average over.
    """
    f, g = _flow_numpy(flow, "flow"), _flow_numpy(gt, "gt")
    if f.shape != g.shape:
        raise InputError(f"flow {f.shape[1]}x{f.shape[0]} and ground truth {g.shape[1]}x{g.shape[0]} differ in size")
    keep = np.isfinite(g).all(-1) & (np.abs(g) < FLO_UNKNOWN).all(-1)
    if valid is not None:
        v = valid.detach().cpu().numpy() if isinstance(valid, torch.Tensor) else np.asarray(valid)
        if v.shape != keep.shape:
            raise InputError(f"the valid mask is {v.shape}, not {keep.shape}")
        keep &= v.astype(bool)
    if not keep.any():
        raise InputError("no valid pixel to compute the end-point error over")
    err = np.sqrt(np.square(f[keep].astype(np.float64) - g[keep]).sum(-1))
    return float(err.mean())
