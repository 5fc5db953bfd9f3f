"""Make the README's before/after figure from real images (run from the repo root).

    python scripts/readme_figures.py            # writes docs/images/before-after.png

Rows: a plain stylization, a two-style blend, and colour preservation; columns: content
photo, style image(s), result. Each result's metrics are printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

import atelier
from atelier.io import images as img

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "before-after.png"
TILE = 220


def tile(im: Image.Image, label: str) -> Image.Image:
    im = im.copy()
    im.thumbnail((TILE, TILE), Image.LANCZOS)
    t = Image.new("RGB", (TILE, TILE + 18), "white")
    t.paste(im, ((TILE - im.width) // 2, (TILE - im.height) // 2))
    ImageDraw.Draw(t).text((4, TILE + 3), label, fill="black")
    return t


def main() -> int:
    content = DATA / "content" / "000000000030.jpg"  # CC BY 2.0, see ../shared/data/README.md
    rows = [
        ("starry night", [DATA / "styles" / "starry_night.jpg"], {}),
        ("0.5 great wave + 0.5 composition vii",
         [DATA / "styles" / "great_wave.jpg", DATA / "styles" / "composition_vii.jpg"], {"style_blend": [0.5, 0.5]}),
        ("the scream, luminance only", [DATA / "styles" / "the_scream.jpg"], {"preserve_color": "luminance"}),
    ]
    tiles = []
    for label, styles, extra in rows:
        out = atelier.stylize(content, styles, size=320, iterations=150, seed=0, **extra)
        scores = atelier.evaluate(out, content, styles, config=atelier.GatysConfig(precision="fp32", **extra))
        print(label, {k: v for k, v in scores.items() if k != "size"})
        style_tiles = [img.open_image(s) for s in styles]
        if len(style_tiles) == 2:
            a, b = (s.resize((TILE // 2, TILE)) for s in style_tiles)
            both = Image.new("RGB", (TILE, TILE))
            both.paste(a, (0, 0))
            both.paste(b, (TILE // 2, 0))
            style_tile = both
        else:
            style_tile = style_tiles[0]
        tiles.append([tile(img.open_image(content), "content photo"), tile(style_tile, label),
                      tile(out, f"result  SSIM {scores['ssim']:.2f}")])
    sheet = Image.new("RGB", (3 * TILE + 8, len(tiles) * (TILE + 22)), "white")
    for r, row in enumerate(tiles):
        for c, t in enumerate(row):
            sheet.paste(t, (c * (TILE + 4), r * (TILE + 22)))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    img.save_image(sheet, OUT)
    print("wrote", OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
