"""Ship models trained by ``scripts/gpu_train.sh`` (or continued on the CPU): copy them into the package.

SRC is an extracted output folder of the GPU job (``<job>/<name>.safetensors`` + ``.json``). For
each job named, the weights and model card are copied to their place in ``src/atelier/models``:

* ``adain_w05`` -> ``models/adain/decoder`` (the default decoder, fast on CPUs), ``adain`` ->
  ``models/adain/decoder-w1`` (the paper's width);
* ``wct_relu{k}_1`` -> ``models/wct/decoder-relu{k}_1``;
* ``ff_<name>`` -> ``models/<name>``; a temporally trained ``ff_<style>_t<weight>`` ->
  ``models/<style>_temporal``.

The card gets ``training_pack`` (from the pack manifest) if it lacks it, its training-image
sources are written relative to the pack (no machine paths), and ``notes`` says how it was
trained. The weights are copied byte for byte: the card's sha256 still verifies them.

    python scripts/install_trained_models.py /tmp/gpu --jobs adain_w05,adain,wct_relu1_1,...,ff_udnie \
        --notes "scripts/gpu_train.sh on an NVIDIA H200: 450 s, resumed for 200 s"
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ROOT / "src" / "atelier" / "models"

from atelier.api import recipes  # the jobs' recipes and add_pack_to_card


def target(job: str) -> pathlib.Path:
    """Stem of the shipped files of a job."""
    if job == "adain_w05":
        return MODELS / "adain" / "decoder"
    if job == "adain":
        return MODELS / "adain" / "decoder-w1"
    if job.startswith("wct_"):
        return MODELS / "wct" / f"decoder-{job[4:]}"
    if job in recipes.FF_TEMPORAL:  # ff_starry_night_t3 -> models/starry_night_temporal
        return MODELS / f"{recipes.FF_TEMPORAL[job][0]}_temporal"
    if job.startswith("ff_"):
        return MODELS / job[3:]
    if job == "paint_actor":
        return MODELS / "paint" / "paint_actor"
    raise SystemExit(f"error: unknown job {job!r}")


def _relative(source: str) -> str:
    if "/pack/styles/" in source:  # the evaluation paintings travel byte for byte
        return "shared/data/styles/" + source.split("/pack/styles/", 1)[1]
    for marker in ("/pack/", "/.gpu/"):
        if marker in source:
            return "shared/data/train (compact copy): " + source.split(marker, 1)[1]
    return pathlib.Path(source).name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=pathlib.Path)
    ap.add_argument("--jobs", required=True)
    ap.add_argument("--pack", type=pathlib.Path, default=ROOT / ".gpu" / "pack")
    ap.add_argument("--notes", default="")
    args = ap.parse_args(argv)
    for job in [j for j in args.jobs.split(",") if j]:
        cards = sorted((args.src / job).glob("*.json"))
        if not cards:
            print(f"error: {args.src / job}: no model card", file=sys.stderr)
            return 2
        card_path = cards[0]
        weights = card_path.with_suffix(".safetensors")
        dest = target(job)
        dest.parent.mkdir(parents=True, exist_ok=True)
        card = json.loads(card_path.read_text())
        if "training_pack" not in card:
            card = recipes.add_pack_to_card(card_path, args.pack)
        for key in ("training_images", "style_images"):
            if key in card:
                card[key]["sources"] = [_relative(s) for s in card[key].get("sources", [])]
        hp = card.get("hyperparameters", {})
        for k in ("content", "styles"):
            v = hp.get(k)
            if isinstance(v, str):
                hp[k] = _relative(v)
            elif isinstance(v, list):
                hp[k] = [_relative(x) for x in v]
        hp["out"] = dest.name + ".safetensors"
        card["weights_file"] = dest.name + ".safetensors"
        if args.notes:
            card["notes"] = args.notes
        shutil.copyfile(weights, dest.with_suffix(".safetensors"))
        dest.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
        print(f"{job}: {dest.relative_to(ROOT)} ({card['steps']} steps, {card.get('device')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
