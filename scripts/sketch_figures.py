"""The README's sketch grid: photos, the contour network's boundary map, and the sketches.

    python scripts/sketch_figures.py docs/images/sketch-grid.png [--model PATH]

Rows: two BSDS500 val photos (never seen in training) and two photos of shared/data/content;
columns: photo, boundary probability, pencil, ink, charcoal, pencil --lines-only. Each cell is the
image at 320 px on its longest side, centred on white in a 320x320 square.
"""

import argparse
import pathlib

import torch
import torch.nn.functional as F

from atelier.io import images as img
from atelier.encoders.vgg import get_encoder
from atelier.methods.sketch.contours import boundary_map, load_contour_net
from atelier.methods.sketch.draw import sketch_tensor

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
PHOTOS = ["bsds500/images/val/101087.jpg", "bsds500/images/val/108082.jpg", "content/000000000030.jpg",
          "content/000000000389.jpg"]
CELL = 320


def cell(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    out = torch.ones(1, 3, CELL, CELL)
    top, left = (CELL - h) // 2, (CELL - w) // 2
    out[..., top:top + h, left:left + w] = x
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    net, enc = load_contour_net(args.model), get_encoder()
    rows = []
    for rel in PHOTOS:
        x = img.load_image(DATA / rel, size=CELL)
        b = boundary_map(x, net, enc)
        cells = [x, 1 - b.expand(-1, 3, -1, -1)]
        cells += [sketch_tensor(x, s, boundary=b) for s in ("pencil", "ink", "charcoal")]
        cells.append(sketch_tensor(x, "pencil", lines_only=True, boundary=b))
        rows.append(torch.cat([F.pad(cell(c), (2, 2, 2, 2), value=1.0) for c in cells], -1))
    img.save_image(torch.cat(rows, -2), args.out, metadata={"photos": PHOTOS,
                   "columns": ["photo", "boundary probability (dark = 1)", "pencil", "ink", "charcoal",
                               "pencil --lines-only"]})
    # 256 colours (the sketches are grey): a third of the size of the 24-bit PNG
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    with Image.open(args.out) as im:
        meta = PngInfo()
        for k, v in im.info.items():
            if isinstance(v, str):
                meta.add_text(k, v)
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(args.out, optimize=True, pnginfo=meta)
    print("wrote", args.out)
