"""The feed-forward models shipped in the package: present, verified, documented, and stylizing.

Held-out photos (scikit-image's coffee and astronaut) were not in any model's training set.
"""

import hashlib

import pytest
import torch
from typer.testing import CliRunner

import atelier
import atelier.training.zoo
from atelier.io import images as img
from atelier.cli import app
from atelier.training.zoo import model_card
from atelier.methods.feedforward.apply import stylize_tensor
from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer
from atelier.analysis.metrics import style_distance

from conftest import DATA


@pytest.fixture(scope="module")
def paintings():
    files = sorted((DATA / "styles").glob("*.jpg"))
    assert len(files) == 10, f"expected the 10 paintings in {DATA / 'styles'}"
    return {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in files}


@pytest.fixture(scope="module")
def scorer():
    return GatysStyleTransfer(GatysConfig(precision="fp32", device="cpu"))


def test_shipped_models_cover_all_ten_paintings(paintings):
    names = atelier.list_models()
    cards = {n: model_card(n) for n in names}
    singles = [n for n, c in cards.items() if c["architecture"]["num_styles"] == 1]
    multis = [n for n, c in cards.items() if c["architecture"]["num_styles"] > 1]
    assert len(singles) >= 4 and len(multis) >= 1, names
    covered = {s["sha256"] for c in cards.values() for s in c["styles"]}
    assert set(paintings) <= covered  # by content, not by file name
    for name, card in cards.items():
        for key in ("hyperparameters", "steps", "final_losses", "wall_seconds", "device", "sha256"):
            assert key in card, (name, key)
        # trained on the training pack's photos (named by file count and list hash, with its terms),
        # which holds no evaluation photo (test_evaluation_images_are_not_in_the_training_pack)
        pack = card["training_pack"]
        assert pack["files"] == 1942 and len(pack["sha256_of_sorted_list"]) == 64 and pack["terms"]
        # all 1,549 photos, or (continued within the 64 MiB GPU carry limit) a subset of them
        assert card["training_images"]["count"] == pack["photos"] and 900 <= pack["photos"] <= 1549
        assert (atelier.training.zoo.model_path(name).stat().st_size < 8 * 2**20)  # small files (fp16)


def test_models_command_lists_them():
    r = CliRunner().invoke(app, ["models"])
    assert r.exit_code == 0
    for name in atelier.list_models():
        assert name in r.output
    r = CliRunner().invoke(app, ["models", "multi10"])
    assert r.exit_code == 0 and "starry_night.jpg" in r.output


@pytest.mark.parametrize("name", ["starry_night", "great_wave", "the_scream", "udnie"])
def test_single_style_model_takes_its_style_and_keeps_the_content(name, scorer, paintings):
    from skimage import data

    net = atelier.load_model(name)  # sha256 verified
    photo = img.load_image(data.coffee(), size=192)
    out = stylize_tensor(net, photo, precision="fp32")
    assert out.shape == photo.shape
    own = img.load_image(DATA / "styles" / f"{name}.jpg")
    before, after = style_distance(scorer, photo, own), style_distance(scorer, out, own)
    assert after < 0.5 * before, (before, after)
    # The content is kept: the output matches its own photo far better than another photo.
    scores = atelier.evaluate(out, photo, [own], st=scorer)
    other = img.resize_to(img.load_image(data.astronaut()), *photo.shape[-2:])
    baseline = atelier.evaluate(out, other, [own], st=scorer)
    assert scores["content_loss"] < baseline["content_loss"] - 0.05, (scores, baseline)
    assert scores["ssim"] > max(0.15, 2 * baseline["ssim"]), (scores, baseline)


def test_multi_style_model_styles_differ_and_blend(scorer, paintings):
    from skimage import data

    net = atelier.load_model("multi10")
    assert net.num_styles == 10
    photo = img.load_image(data.astronaut(), size=160)
    outs = [stylize_tensor(net, photo, i, precision="fp32") for i in range(net.num_styles)]
    styles = [img.load_image(DATA / "styles" / f) for f in net.style_names]
    # Each output is closer (Gram distance) to its own painting than the photo is.
    for i in range(net.num_styles):
        assert style_distance(scorer, outs[i], styles[i]) < style_distance(scorer, photo, styles[i]), net.style_names[i]
    # Blending two styles lands between them.
    mix = stylize_tensor(net, photo, [0.5, 0.5] + [0.0] * 8, precision="fp32")
    d0 = [style_distance(scorer, t, styles[0]) for t in (outs[0], mix, outs[1])]
    assert d0[0] < d0[1] < d0[2], d0


def test_shipped_adain_decoder_generalizes_to_held_out_painting_and_photo(scorer):
    from skimage import data

    from atelier.analysis.metrics import ssim_luminance

    model = atelier.load_adain(precision="fp32")  # sha256 verified
    card = model.card
    assert card["format"] == "atelier-adain-decoder"
    # trained on the training pack only: none of the ten evaluation paintings (see the next test)
    assert card["training_pack"]["files"] == 1942 and card["training_pack"]["paintings"] == 393
    assert card["hyperparameters"]["identity_fraction"] > 0  # shown the reconstruction case
    photo = img.load_image(data.coffee(), size=192)
    painting = img.load_image(DATA / "styles" / "the_scream.jpg", size=192)
    style = model.encode_style(painting)
    out = model(photo, style)
    assert out.shape == photo.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    before, after = style_distance(scorer, photo, painting), style_distance(scorer, out, painting)
    assert after < 0.5 * before, (before, after)
    scores = atelier.evaluate(out, photo, [painting], st=scorer)
    other = img.resize_to(img.load_image(data.astronaut()), *photo.shape[-2:])
    baseline = atelier.evaluate(out, other, [painting], st=scorer)
    # The photo's structure is kept: luminance SSIM 4x that against another photo and a lower
    # relu4_2 content loss than against it (0.75 vs 0.99 on 2026-11-27; issue 12's gate asks for
    # under half, not met yet: docs/benchmarks.md).
    assert scores["ssim"] > 2 * baseline["ssim"], (scores, baseline)
    assert scores["content_loss"] < 0.9 * baseline["content_loss"], (scores, baseline)
    # alpha=0 passes the photo's own features: the decoder inverts them (SSIM 0.25 against 0.06 for
    # another photo; the gate of 0.6 is not met yet)
    with torch.no_grad():
        recon = model(photo, style, alpha=0.0)
    assert ssim_luminance(photo, recon) > 3 * ssim_luminance(other, recon)
    # alpha trades style for content: less style, more of the photo.
    half = model(photo, style, alpha=0.3)
    assert style_distance(scorer, half, painting) > after
    assert atelier.evaluate(half, photo, [painting], st=scorer)["content_loss"] < scores["content_loss"]


def test_evaluation_images_are_not_in_the_training_pack(paintings):
    """Every learned model trains on shared/data/train: none of its paintings may be one of the ten
    evaluation paintings, none of its photos one of the evaluation photos (shared/data/content and
    the scikit-image photos the benchmarks use). Grey 24x24 thumbnails, as
    scripts/make_training_pack.py checks: a copy or a rescaled copy correlates above 0.95, the
    closest distinct painting at 0.65."""
    import io

    import numpy as np
    from PIL import Image

    def thumb(p):
        with Image.open(p) as im:
            a = np.asarray(im.convert("L").resize((24, 24), Image.Resampling.BILINEAR), np.float32).ravel()
        a = a - a.mean()
        return a / (np.linalg.norm(a) + 1e-6)

    pack = sorted((DATA / "train" / "paintings").glob("*.jpg"))
    assert len(pack) == 393
    t = np.stack([thumb(p) for p in pack])
    for p in paintings.values():
        assert float((t @ thumb(p)).max()) < 0.9, p.name
    from skimage import data

    photos = np.stack([thumb(p) for p in sorted((DATA / "train" / "photos").glob("*.jpg"))])
    assert len(photos) == 1549
    evaluation = sorted((DATA / "content").glob("*.jpg"))
    for name in ("coffee", "astronaut", "chelsea"):
        buf = io.BytesIO()
        Image.fromarray(getattr(data, name)()).convert("RGB").save(buf, "PNG")
        buf.seek(0)
        evaluation.append(buf)
    for p in evaluation:
        assert float((photos @ thumb(p)).max()) < 0.9, p
        # the check itself finds a copy: a resized, re-encoded evaluation painting correlates highly

    buf = io.BytesIO()
    with Image.open(next(iter(paintings.values()))) as im:
        im.convert("RGB").resize((256, 256)).save(buf, "JPEG", quality=80)
    buf.seek(0)
    assert float(thumb(buf) @ thumb(next(iter(paintings.values())))) > 0.95
