"""Ghosting and flicker near motion boundaries in flow-blended video (issue 30, item 12).

On the four Sintel clips with true flow in ``../shared/data/video/sintel_flow`` (clean easy /
medium / hard, final hard; 1024 x 436, frames 1-4, ground truth for frame 2 -> 3), each method
stylizes the frames 4, 3, 2 in that order with :class:`atelier.methods.video.VideoStylizer`
(reversed so that the flow the blend needs at frame 2, from frame 2 to frame 3, is the one Sintel
gives, and its occlusion mask says which pixels of frame 2 frame 3 cannot show). At frame 2:

- **ghosting**: the mean absolute difference, over the pixels that are truly occluded in
  frame 3 (``gt/occlusions``), between the output and the frame's own stylization. Nothing of
  frame 3 belongs there, so whatever the blend brought in is a ghost (0 for per-frame; [0, 1]
  colour units, 0.01 is 2.6 grey levels).
- **warping error near motion boundaries**: :func:`atelier.analysis.metrics.warping_error` with
  the *true* flow and the true non-occluded mask, restricted to a band of 7 px around the true
  motion boundaries and occlusions (the halo of flicker around moving limbs), and over every
  non-occluded pixel.

Variants: per frame (``--temporal none``), the blend with Ruder et al.'s consistency mask only
(``photometric_check=False``, the behaviour before 2026-12-03), the blend with the photometric
check (the default), and the default with DIS ``medium`` flow instead of ``fast``. Writes a JSON,
prints a table and, with ``--image``, a crop (frame | per frame | Ruder mask | default) of the
clip with the most occlusion.

    python benchmarks/ghosting.py --json docs/results/ghosting.json --image docs/images/video-ghosting.png
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import cv2
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from feedforward import environment  # noqa: E402

from atelier.analysis.metrics import warping_error
from atelier.api.video import build_stylizer
from atelier.imaging.flow import read_flo
from atelier.methods.video import TemporalConfig, VideoStylizer

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "video" / "sintel_flow"
STYLE = ROOT.parent / "shared" / "data" / "styles" / "starry_night.jpg"
CLIPS = ("clean/easy", "clean/medium", "clean/hard", "final/hard")
METHODS = {"starry_night": (), "starry_night_temporal": (), "adain": (STYLE,)}
#: variant -> TemporalConfig fields
VARIANTS = {
    "per frame": dict(mode="none"),
    "blend, Ruder mask": dict(mode="blend", photometric_check=False),
    "blend, default": dict(mode="blend"),
    "blend, default, DIS medium": dict(mode="blend", flow_preset="medium"),
}
BAND_PX = 7


def _frame(path: pathlib.Path) -> torch.Tensor:
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1)[None].float() / 255


def _mask(path: pathlib.Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) >= 128


def truth(clip: str) -> dict:
    """Ground truth at frame 2: flow to frame 3, visible / occluded pixels, the boundary band."""
    d = DATA / clip
    gt = read_flo(d / "gt" / "frame_0002.flo")
    valid = ~_mask(d / "gt" / "invalid" / "frame_0002.png")
    occluded = _mask(d / "gt" / "occlusions" / "frame_0002.png") & valid
    # true motion boundaries: |grad flow| above 0.5 px per px (Sobel, normalised to a central difference)
    grad2 = sum(np.square(cv2.Sobel(gt[..., c], cv2.CV_32F, dx, 1 - dx, ksize=3) / 8) for c in (0, 1) for dx in (0, 1))
    edges = ((grad2 > 0.25) | occluded).astype(np.uint8)
    band = cv2.dilate(edges, np.ones((2 * BAND_PX + 1,) * 2, np.uint8)).astype(bool) & valid
    return dict(flow=gt, visible=valid & ~occluded, occluded=occluded, band=band & valid & ~occluded)


def run(method: str, styles, variant: str, clip: str, stylizer, t: dict) -> tuple[dict, torch.Tensor]:
    frames = {i: _frame(DATA / clip / f"frame_{i:04d}.png") for i in (2, 3, 4)}
    vs = VideoStylizer(stylizer=stylizer, config=TemporalConfig(**VARIANTS[variant]))
    out = {i: vs(frames[i]) for i in (4, 3, 2)}  # reversed: the blend at frame 2 uses the flow 2 -> 3
    own = stylizer(frames[2]).float().clamp(0, 1)
    ghost = (out[2] - own).abs().mean(1)[0].numpy()[t["occluded"]]
    row = dict(method=method, variant=variant, clip=clip,
               ghosting=float(ghost.mean()) if ghost.size else None,
               warping_error_boundary=warping_error(out[2], out[3], t["flow"], t["band"].astype(np.float32)),
               warping_error_visible=warping_error(out[2], out[3], t["flow"], t["visible"].astype(np.float32)),
               reliable=vs.stats["reliable"], occluded_share=float(t["occluded"].mean()),
               band_share=float(t["band"].mean()))
    return row, out[2]


def crop_image(path: pathlib.Path, clip: str, images: list[torch.Tensor], t: dict, width: int = 300) -> None:
    """Side by side around the largest occlusion: input | per frame | Ruder mask | default."""
    occ = t["occluded"].astype(np.float32)
    score = cv2.boxFilter(occ, -1, (width, width))
    y, x = np.unravel_index(np.argmax(score), score.shape)
    h, w = occ.shape
    x0, y0 = int(np.clip(x - width // 2, 0, w - width)), int(np.clip(y - width // 2, 0, h - width))
    tiles = [(im[0, :, y0:y0 + width, x0:x0 + width].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
             for im in images]
    gap = np.full((width, 6, 3), 255, np.uint8)
    row = np.concatenate(sum(([tile, gap] for tile in tiles), [])[:-1], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(row).save(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--image", type=pathlib.Path, help="crop of frame 2 of clean/hard for starry_night")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args(argv)
    rows, truths = [], {c: truth(c) for c in CLIPS}
    for method in args.methods.split(","):
        kind, stylizer = build_stylizer(method, METHODS[method], precision="fp32")
        for clip in CLIPS:
            shown = [_frame(DATA / clip / "frame_0002.png")]
            for variant in VARIANTS:
                row, y2 = run(method, METHODS[method], variant, clip, stylizer, truths[clip])
                rows.append(row)
                if variant != "blend, default, DIS medium":
                    shown.append(y2)
                print(f"{method:22s} {clip:13s} {variant:27s} ghosting {row['ghosting']:.4f}  "
                      f"WE boundary {row['warping_error_boundary'] * 1e3:6.2f}e-3  "
                      f"WE visible {row['warping_error_visible'] * 1e3:6.2f}e-3", flush=True)
            if args.image and method == "starry_night" and clip == "clean/hard":
                crop_image(args.image, clip, shown, truths[clip])
    summary = {}
    for method in {r["method"] for r in rows}:
        for variant in VARIANTS:
            sel = [r for r in rows if r["method"] == method and r["variant"] == variant]
            summary[f"{method} | {variant}"] = {k: float(np.mean([r[k] for r in sel]))
                                                for k in ("ghosting", "warping_error_boundary", "warping_error_visible")}
    print("\nmean over the four clips (ghosting; warping error near boundaries; over visible pixels):")
    for key, v in sorted(summary.items()):
        print(f"  {key:50s} {v['ghosting']:.4f}  {v['warping_error_boundary'] * 1e3:6.2f}e-3  "
              f"{v['warping_error_visible'] * 1e3:6.2f}e-3")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"environment": environment(), "band_px": BAND_PX, "rows": rows,
                                         "mean": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
