"""The feed-forward models shipped in the package: present, verified, documented, and stylizing.

Held-out photos (scikit-image's coffee and astronaut) were not in any model's training set.
"""

import hashlib

import pytest
from typer.testing import CliRunner

import atelier
import atelier.zoo
from atelier.core import io as img
from atelier.cli import app
from atelier.zoo import model_card
from atelier.methods.feedforward.apply import stylize_tensor
from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer
from atelier.metrics import style_distance

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
        files = card["training_images"]["files"]
        assert files and all(f["licence"] and f["from"] for f in files)
        assert not any("astronaut" in f["from"] or "coffee" in f["from"] for f in files)
        assert (atelier.zoo.model_path(name).stat().st_size < 8 * 2**20)  # small files (fp16)


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

    model = atelier.load_adain(precision="fp32")  # sha256 verified
    card = model.card
    assert card["format"] == "atelier-adain-decoder"
    held_out = card["style_images"]["held_out"]
    trained_on = " ".join(f["from"] for f in card["style_images"]["files"])
    assert held_out and not any(p in trained_on for p in held_out)
    assert all(f["licence"] for f in card["style_images"]["files"] + card["training_images"]["files"])
    photo = img.load_image(data.coffee(), size=192)
    painting = img.load_image(DATA / "styles" / held_out[0], size=192)
    style = model.encode_style(painting)
    out = model(photo, style)
    assert out.shape == photo.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    before, after = style_distance(scorer, photo, painting), style_distance(scorer, out, painting)
    assert after < 0.5 * before, (before, after)
    scores = atelier.evaluate(out, photo, [painting], st=scorer)
    other = img.resize_to(img.load_image(data.astronaut()), *photo.shape[-2:])
    baseline = atelier.evaluate(out, other, [painting], st=scorer)
    # The photo's structure is kept (luminance SSIM 3x that against another photo, 2026-11-26). Its
    # relu4_2 content loss is NOT yet lower than against another photo: the decoder was trained for
    # 4500 CPU steps (docs/benchmarks.md), so that is not asserted.
    assert scores["ssim"] > 2 * baseline["ssim"], (scores, baseline)
    # alpha trades style for content: less style, more of the photo.
    half = model(photo, style, alpha=0.3)
    assert style_distance(scorer, half, painting) > after
    assert atelier.evaluate(half, photo, [painting], st=scorer)["content_loss"] < scores["content_loss"]
