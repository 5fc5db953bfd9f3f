"""Build the folder of training photos for the shipped feed-forward models and AdaIN decoder.

Sources (all permissively licensed; none of the skimage photos, which are kept out for the
quality benchmarks):

* ``../shared/data/content``: the project's photos (licences in its README);
* every 5th frame of ``../shared/data/video/sintel_mountain_2`` (Sintel, CC BY 3.0, Blender
  Foundation);
* the nature photos of Debian's ``mate-backgrounds`` package (GPL-2+), fetched with
  ``apt-get download`` (network access to the Debian mirror is needed here, never in tests).

Every photo is resized so that its longest side is at most ``--max-side`` px (crops are taken
from these copies) and saved as JPEG quality 95 under ``--out``; ``SOURCES.json`` records each
file's origin and licence.

    python scripts/prepare_training_photos.py --out training-photos
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _save(src: pathlib.Path, dst: pathlib.Path, max_side: int) -> None:
    with Image.open(src) as im:
        im = im.convert("RGB")
        im.thumbnail((max_side, max_side), Image.LANCZOS)
        im.save(dst, quality=95)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "training-photos")
    ap.add_argument("--max-side", type=int, default=512)
    ap.add_argument("--no-debian", action="store_true", help="skip the mate-backgrounds photos")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sources = []
    for p in sorted((SHARED / "content").glob("*.jpg")):
        dst = args.out / f"coco_{p.stem}.jpg"
        _save(p, dst, args.max_side)
        sources.append({"file": dst.name, "from": f"shared/data/content/{p.name}",
                        "licence": "see shared/data/README.md (permissive)"})
    frames = sorted((SHARED / "video" / "sintel_mountain_2").glob("*.png"))
    for p in frames[::5]:
        dst = args.out / f"sintel_{p.stem}.jpg"
        _save(p, dst, args.max_side)
        sources.append({"file": dst.name, "from": f"shared/data/video/sintel_mountain_2/{p.name}",
                        "licence": "CC BY 3.0, Blender Foundation (Sintel)"})
    if not args.no_debian:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = pathlib.Path(tmp)
            subprocess.run(["apt-get", "download", "mate-backgrounds"], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL)
            deb = next(tmp.glob("mate-backgrounds_*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "x")], check=True)
            for p in sorted((tmp / "x" / "usr/share/backgrounds/mate/nature").glob("*.jpg")):
                dst = args.out / f"mate_{p.stem}.jpg"
                _save(p, dst, args.max_side)
                sources.append({"file": dst.name, "from": f"Debian {deb.name}: /usr/share/backgrounds/mate/"
                                f"nature/{p.name}", "licence": "GPL-2+ (mate-backgrounds)"})
    (args.out / "SOURCES.json").write_text(json.dumps(sources, indent=1) + "\n")
    print(f"{len(sources)} photos in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
