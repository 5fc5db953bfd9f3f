"""Seams of tileable textures (issue 28 item 3): the wrap-around seam with and without ``tileable``.

For each method, photos from ``../shared/data/content`` are stylized twice at the same size, plain
and with ``tileable=True``, and :func:`atelier.imaging.tileable.seam_ratio` measures the seam: the
mean absolute difference of neighbouring pixels across the wrap edge (last column to first, last
row to first) over the same mean for every pair of neighbours inside, per direction, and the rank
of the wrap pair among the inside pairs (0.5 expected without a seam, 1.0 for a seam). One image's
ratio varies by 20-30 % (one column of pixels), so the figures are means over the photos. Also a
pure texture (Gatys from noise with no content loss) and, with ``--image``, a 2x2 tiled preview of
a tileable AdaIN and Gatys result beside a plain one.

    python benchmarks/tileable.py --json docs/results/tileable.json --image docs/images/tileable-2x2.jpg
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from feedforward import environment  # noqa: E402

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def measure(method: str, photos: list, style, size: int, **opts) -> dict:
    import atelier
    from atelier.imaging.tileable import seam_ratio

    rows = []
    for p in photos:
        styles = [] if style is None else [style]
        plain = seam_ratio(atelier.stylize(p, styles, method=method, size=size, **opts))
        tiled = seam_ratio(atelier.stylize(p, styles, method=method, size=size, tileable=True, **opts))
        rows.append({"photo": p.name, "plain": plain, "tileable": tiled})
    out = {"photos": len(rows), "size": size, "rows": rows}
    for kind in ("plain", "tileable"):
        r = np.array([[x[kind]["horizontal"], x[kind]["vertical"]] for x in rows])
        q = np.array([[x[kind]["rank_horizontal"], x[kind]["rank_vertical"]] for x in rows])
        out[kind] = {"mean_ratio": float(r.mean()), "mean_ratio_horizontal": float(r[:, 0].mean()),
                     "mean_ratio_vertical": float(r[:, 1].mean()), "max_ratio": float(r.max()),
                     "mean_rank": float(q.mean())}
    return out


def texture(style, size: int, iterations: int) -> dict:
    import atelier
    from atelier.imaging.tileable import seam_ratio

    res = {}
    for t in (False, True):
        o = atelier.stylize(DATA / "content" / "000000000030.jpg", [style], size=size, iterations=iterations,
                            init="noise", content_weight=0.0, seed=0, precision="fp32", tileable=t)
        res["tileable" if t else "plain"] = seam_ratio(o)
    return res


def preview(photo, style, path: pathlib.Path, gatys_iterations: int) -> None:
    import atelier
    from PIL import Image

    tiles = []
    for method, t, opts in (("adain", False, {}), ("adain", True, {}),
                            ("gatys", True, dict(iterations=gatys_iterations, seed=0, precision="fp32"))):
        o = atelier.stylize(photo, [style], method=method, size=192, tileable=t, **opts)
        w, h = o.size
        grid = Image.new("RGB", (2 * w, 2 * h))
        for dx in (0, w):
            for dy in (0, h):
                grid.paste(o, (dx, dy))
        tiles.append(grid)
    gap = 12
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1), max(t.height for t in tiles)),
                      "white")
    x = 0
    for t in tiles:
        sheet.paste(t, (x, 0))
        x += t.width + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=20, help="photos per one-pass method")
    ap.add_argument("--gatys-photos", type=int, default=4)
    ap.add_argument("--gatys-iterations", type=int, default=40)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--image", type=pathlib.Path)
    a = ap.parse_args()
    photos = sorted((DATA / "content").glob("*.jpg"))
    style = DATA / "styles" / "starry_night.jpg"
    t0 = time.time()
    res = {"environment": environment(), "date": time.strftime("%Y-%m-%d"), "methods": {}}
    res["methods"]["starry_night (feed-forward)"] = measure("starry_night", photos[: a.photos], None, a.size)
    res["methods"]["adain"] = measure("adain", photos[: a.photos], style, a.size)
    res["methods"]["gatys"] = measure("gatys", photos[: a.gatys_photos], style, 128,
                                      iterations=a.gatys_iterations, seed=0, precision="fp32")
    res["texture_gatys_noise_no_content"] = texture(style, 128, a.gatys_iterations)
    res["seconds"] = round(time.time() - t0, 1)
    for name, m in res["methods"].items():
        print(f"{name:28s} {m['photos']:3d} photos  plain {m['plain']['mean_ratio']:6.2f} (rank "
              f"{m['plain']['mean_rank']:.2f})  tileable {m['tileable']['mean_ratio']:5.2f} (rank "
              f"{m['tileable']['mean_rank']:.2f}, max {m['tileable']['max_ratio']:.2f})")
    tx = res["texture_gatys_noise_no_content"]
    print(f"texture (noise, no content)  plain {tx['plain']['ratio']:.2f}  tileable {tx['tileable']['ratio']:.2f}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1))
    if a.image:
        preview(photos[0], style, a.image, a.gatys_iterations)


if __name__ == "__main__":
    main()
