"""The frame-by-frame video stylizer: per-frame, flow-guided blending, or optimization with a
temporal loss.

Three modes (:data:`MODES`):

* ``"none"``: each frame stylized on its own (flickers: small input changes give other strokes).
* ``"blend"`` (feed-forward, AdaIN, WCT): the frame is stylized, then on the pixels where the
  optical flow is reliable it is pulled toward the previous *output* warped into this frame:
  ``y = s + a * c * (warp(y_prev, flow) - s)``, with ``s`` the per-frame result, ``c`` the
  consistency mask (1 where the flow is reliable: forward-backward consistent and off motion
  boundaries, Ruder et al. 2016, and, with ``photometric_check``, where the warped previous input
  frame matches this one) and ``a`` the temporal weight in [0, 1]. Because ``a < 1`` every
  frame keeps a share of its own result, so static parts do not blur over time; and each
  channel's mean is then moved back to that of ``s`` (``track_colour``), so long clips do not
  drift darker, lighter or toward a colour.
* ``"optimize"`` (Gatys): each frame's optimization starts from the previous output warped by the
  flow and adds the short-term temporal loss of Ruder et al. (2016, eq. 5): ``weight *
  mean(c * (x - warp(y_prev))^2) / 0.25^2``; with ``long_term`` also frames t-10 and t-20
  (Ruder et al. 2018, J = {1, 10, 20}), each with the part of its mask not already covered by a
  nearer frame (their c_long). Each frame starts from the previous result, so colour errors could
  accumulate: each channel's mean keeps its first-frame offset to the input frame's (``track_colour``).

Flow: :class:`atelier.imaging.flow.FlowEstimator` (OpenCV DIS by default) from this input frame to
the previous ones (backward) and back (forward), on the *input* frames. Memory is bounded: only
the last ``max(offsets)`` frames are kept.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ...imaging import color
from ...imaging.flow import FlowEstimator, consistency_mask, photometric_mask, warp
from ...core.protocols import FrameOptimizer, Stylizer
from ...training.temporal import PIXEL_SCALE

MODES = ("none", "blend", "optimize")
#: Frame offsets of the long-term temporal loss (Ruder et al. 2018, J = {1, 10, 20}).
LONG_TERM_OFFSETS = (1, 10, 20)
#: Default temporal weight per mode: blend share of the warped previous output; optimize loss weight.
DEFAULT_WEIGHT = {"none": 0.0, "blend": 0.7, "optimize": 20.0}


@dataclass
class TemporalConfig:
    """How a video is kept stable.

    Attributes:
        mode: one of :data:`MODES` (see the module doc).
        temporal_weight: ``blend``: the share in [0, 1] of the warped previous output on reliable
            pixels (default 0.7); ``optimize``: the weight (>= 0) of the temporal loss (default 20).
            None: the mode's default.
        long_term: ``optimize`` only: also the long-term loss on frames t-10 and t-20.
        flow: ``"dis"`` or ``"farneback"`` (OpenCV).
        flow_preset: DIS preset: ``"ultrafast"``, ``"fast"`` or ``"medium"``.
        track_colour: no drift over long clips: ``blend`` keeps each channel's mean equal to the
            per-frame result's; ``optimize`` keeps the difference between the output's and the
            input frame's channel means at its first-frame value.
        preserve_color: keep the input frame's colours (the output's luminance with the frame's
            chroma, YCbCr), applied to every frame after stylization.
        photometric_check: also distrust the flow where the previous *input* frame, warped by it,
            does not match this one (:func:`~atelier.imaging.flow.photometric_mask`, multiplied
            into the consistency mask): fewer ghosts of fast-moving limbs. On the four Sintel clips
            with true flow it halved the previous output's leak into truly occluded pixels at the
            same warping error near motion boundaries (``benchmarks/ghosting.py``). False: Ruder
            et al.'s mask alone, as before 2026-12-03.
    """

    mode: str = "blend"
    temporal_weight: Optional[float] = None
    long_term: bool = False
    flow: str = "dis"
    flow_preset: str = "fast"
    track_colour: bool = True
    preserve_color: bool = False
    photometric_check: bool = True

    def validate(self) -> "TemporalConfig":
        """Check the fields; returns self. Raises ValueError naming the field."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        w = self.weight
        if not np.isfinite(w) or w < 0 or (self.mode == "blend" and w > 1):
            raise ValueError(f"temporal_weight must be in [0, 1] for blend and >= 0 for optimize, not {w}")
        if self.long_term and self.mode != "optimize":
            raise ValueError("long_term applies to the optimize mode (Gatys) only")
        return self

    @property
    def weight(self) -> float:
        """The temporal weight in effect (the mode's default when None)."""
        return DEFAULT_WEIGHT[self.mode] if self.temporal_weight is None else float(self.temporal_weight)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Previous frames used, as offsets back from the current one."""
        if self.mode == "none":
            return ()
        return LONG_TERM_OFFSETS if self.long_term else (1,)


class VideoStylizer:
    """Stylizes a video one frame at a time, keeping it stable (an application feeds it frames).

    Example::

        vs = VideoStylizer(stylizer=my_network, config=TemporalConfig(mode="blend"))
        for frame in frames:                      # float32 (1, 3, H, W) in [0, 1]
            out = vs(frame)                       # same shape and range, CPU

    Args:
        stylizer: a :class:`~atelier.core.protocols.Stylizer` (modes ``none`` and ``blend``).
        optimizer: a :data:`~atelier.core.protocols.FrameOptimizer` (mode ``optimize``).
        config: a :class:`TemporalConfig`.
        flow: a :class:`~atelier.imaging.flow.FlowEstimator`; default: from the config.

    Attributes:
        stats: ``frames``, ``flow_seconds``, ``stylize_seconds`` and ``reliable`` (mean share in
            [0, 1] of the pixels whose flow was reliable, over the frame pairs that had a flow; None
            before the first pair; carried over a resume by :meth:`restore_counters`) so far; ``temporal_terms``: frames in the last
            optimize-mode temporal loss (1, or up to 3 with ``long_term``).
        last_masks: optimize mode: the masks (1, 1, H, W) of those terms, nearest frame first.

    Raises:
        ValueError: a bad config, a missing stylizer/optimizer for the mode, a frame whose size
            differs from the previous ones, or a frame not (1, 3, H, W).
    """

    def __init__(self, stylizer: Stylizer | None = None, optimizer: FrameOptimizer | None = None,
                 config: TemporalConfig | None = None, flow: FlowEstimator | None = None):
        self.config = (config or TemporalConfig()).validate()
        if self.config.mode == "optimize" and optimizer is None:
            raise ValueError("the optimize mode needs an optimizer (a FrameOptimizer)")
        if self.config.mode != "optimize" and stylizer is None:
            raise ValueError(f"the {self.config.mode} mode needs a stylizer")
        self.stylizer, self.optimizer = stylizer, optimizer
        self.flow = flow if flow is not None or self.config.mode == "none" else FlowEstimator(
            self.config.flow, self.config.flow_preset)
        depth = max(self.config.offsets, default=0)
        self._history: deque = deque(maxlen=max(depth, 1))  # (input uint8 HxWx3, output tensor), newest last
        self.stats = {"frames": 0, "flow_seconds": 0.0, "stylize_seconds": 0.0, "reliable": None}
        self._reliable_sum, self._pairs = 0.0, 0  # mask means summed over the frame pairs that had a flow
        self._colour_offset: torch.Tensor | None = None  # optimize mode: first frame's output - input means

    def reset(self) -> None:
        """Forget the previous frames (a new shot or a new video)."""
        self._history.clear()
        self._colour_offset = None

    def prime(self, frame: torch.Tensor, output: torch.Tensor) -> None:
        """Make (``frame``, ``output``) the previous frame without stylizing (resuming a stopped
        run): both float32 (1, 3, H, W) in [0, 1]."""
        self._check(frame)
        self._history.append((_to_uint8(frame), output.float().cpu()))

    def counters(self) -> dict:
        """The running sums behind ``stats["reliable"]`` (JSON-safe), to carry over a resume with
        :meth:`restore_counters` so the share covers the whole clip: ``reliable_sum`` (sum of the
        per-pair shares of reliable pixels) and ``pairs`` (frame pairs with a flow)."""
        return {"reliable_sum": self._reliable_sum, "pairs": self._pairs}

    def restore_counters(self, counters: dict) -> None:
        """Continue the counts of :meth:`counters` (from a stopped run) instead of adding to them."""
        self._reliable_sum = float(counters.get("reliable_sum", 0.0))
        self._pairs = int(counters.get("pairs", 0))
        self._update_reliable()

    def _update_reliable(self) -> None:
        self.stats["reliable"] = self._reliable_sum / self._pairs if self._pairs else None

    def _add_pair(self, mask: torch.Tensor) -> None:
        self._reliable_sum += float(mask.mean())
        self._pairs += 1
        self._update_reliable()

    def _check(self, frame: torch.Tensor) -> None:
        if frame.dim() != 4 or frame.shape[:2] != (1, 3):
            raise ValueError(f"a frame must be (1, 3, H, W), not {tuple(frame.shape)}")
        if self._history and self._history[-1][1].shape[-2:] != frame.shape[-2:]:
            raise ValueError(f"frame size {tuple(frame.shape[-2:])} differs from the previous frames' "
                             f"{tuple(self._history[-1][1].shape[-2:])}")

    def _previous(self, x8: np.ndarray, j: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mask (1, 1, H, W), previous output j frames back warped into this frame) or None."""
        if len(self._history) < j:
            return None
        prev8, prev_out = self._history[-j]
        t = time.perf_counter()
        backward = self.flow(x8, prev8)  # this frame -> the earlier one: where each pixel came from
        forward = self.flow(prev8, x8)
        mask = torch.from_numpy(consistency_mask(backward, forward))[None, None].float()
        if self.config.photometric_check:  # the flow must also explain the input frames
            here = torch.from_numpy(x8).permute(2, 0, 1)[None].float() / 255
            before = torch.from_numpy(prev8).permute(2, 0, 1)[None].float() / 255
            mask = mask * photometric_mask(here, warp(before, backward))
        warped = warp(prev_out, backward)
        self.stats["flow_seconds"] += time.perf_counter() - t
        return mask, warped

    def __call__(self, frame: torch.Tensor) -> torch.Tensor:
        """Stylize the next frame: float32 (1, 3, H, W) in [0, 1] -> the same shape, CPU."""
        self._check(frame)
        cfg = self.config
        x = frame.float().cpu()
        x8 = _to_uint8(x)
        t = time.perf_counter()
        if cfg.mode == "optimize":
            y = self._optimize(x, x8)
            if cfg.track_colour:  # no drift: the output's channel means keep their first-frame offset to the input's
                offset = y.mean(dim=(2, 3), keepdim=True) - x.mean(dim=(2, 3), keepdim=True)
                if self._colour_offset is None:
                    self._colour_offset = offset
                y = (y + self._colour_offset - offset).clamp(0, 1)
        else:
            s = self.stylizer(x).float().cpu().clamp(0, 1)
            self.stats["stylize_seconds"] += time.perf_counter() - t
            if cfg.preserve_color:
                s = _keep_colours(s, x)
            y = s
            prev = self._previous(x8, 1) if cfg.mode == "blend" and cfg.weight > 0 else None
            if prev is not None:
                mask, warped = prev
                self._add_pair(mask)
                y = s + cfg.weight * mask * (warped - s)
                if cfg.track_colour:  # no drift: each channel's mean stays the per-frame result's
                    y = y + (s.mean(dim=(2, 3), keepdim=True) - y.mean(dim=(2, 3), keepdim=True))
                y = y.clamp(0, 1)
        if cfg.preserve_color:
            y = _keep_colours(y, x)
        self._history.append((x8, y))
        self.stats["frames"] += 1
        return y

    def _optimize(self, x: torch.Tensor, x8: np.ndarray) -> torch.Tensor:
        cfg = self.config
        init, terms, covered = None, [], None
        for j in cfg.offsets:
            prev = self._previous(x8, j)
            if prev is None:
                break
            mask, warped = prev
            if j == 1:
                init = warped
                self._add_pair(mask)
            if covered is not None:  # c_long: only what no nearer frame already covers
                mask = (mask - covered).clamp_min(0)
            covered = mask if covered is None else (covered + mask).clamp(max=1)
            terms.append((mask, warped))
        self.stats["temporal_terms"] = len(terms)
        self.last_masks = [m for m, _ in terms]

        extra = []
        if terms and cfg.weight > 0:
            weight = cfg.weight

            def temporal(img: torch.Tensor, terms=terms) -> torch.Tensor:
                total = 0.0
                for mask, warped in terms:
                    m, w = mask.to(img.device), warped.to(img.device)
                    total = total + (m * (img - w).pow(2)).mean() / PIXEL_SCALE
                return weight * total

            extra.append(temporal)
        t = time.perf_counter()
        y = self.optimizer(x, init, extra).float().cpu().clamp(0, 1)
        self.stats["stylize_seconds"] += time.perf_counter() - t
        return y


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float in [0, 1] -> uint8 (H, W, 3) for the flow."""
    return (x[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def _keep_colours(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return color.combine_luminance_chroma(color.luminance(y), x).clamp(0, 1)
