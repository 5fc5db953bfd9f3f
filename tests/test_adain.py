"""Arbitrary style transfer with AdaIN (Huang & Belongie 2017): the AdaIN layer, the user
controls (alpha, blend, mask), cached style features, and decoder training with resume,
on real photos and paintings."""

import dataclasses
import hashlib
import json
import math
import os
import shutil
import signal

import pytest
import torch
from skimage import data as skdata

from atelier.io import images as img
from atelier.imaging import color
from atelier.core.errors import InputError
from atelier.encoders.vgg import get_encoder
from atelier.networks.decoders import AdaINDecoder
from atelier.methods.arbitrary.model import AdaINModel, StyleFeatures, adain
from atelier.losses import mean_std
from atelier.methods.arbitrary.model import load_adain_file as load_adain
from atelier.methods.arbitrary.train import AdaINTrainConfig, AdaINTrainer
from conftest import data_file

LAYER = "relu4_1"


@pytest.fixture(scope="module")
def encoder():
    return get_encoder(None, "max", "cpu")


@pytest.fixture(scope="module")
def photo():
    return img.load_image(data_file("content/000000000030.jpg"), size=96)  # 1x3x64x96


@pytest.fixture(scope="module")
def astronaut():
    return img.load_image(skdata.astronaut(), size=64)  # 1x3x64x64


@pytest.fixture(scope="module")
def model(encoder, photo):
    torch.manual_seed(0)
    m = AdaINModel(encoder, AdaINDecoder(width=0.25)).eval()
    m.calibrate(photo)  # untrained, but not saturated: outputs depend on the features
    return m


@pytest.fixture(scope="module")
def starry(model):
    return model.encode_style(img.load_image(data_file("styles/starry_night.jpg"), size=96))


@pytest.fixture(scope="module")
def scream(model):
    return model.encode_style(img.load_image(data_file("styles/the_scream.jpg"), size=96))


def _live(*stds):
    """Channels that are not (nearly) constant in every given std (N=1, C, 1, 1)."""
    ok = torch.ones(stds[0].shape[1], dtype=torch.bool)
    for s in stds:
        ok &= s.flatten() > 1.0
    return ok


# --------------------------------------------------------------------------- the AdaIN layer


def test_adain_output_has_the_style_statistics(model, photo, starry):
    fc = model.encode_content(photo)
    assert fc.shape == (1, 512, 8, 12) and fc.dtype == torch.float32
    m, s = mean_std(fc)
    assert m.shape == s.shape == (1, 512, 1, 1)
    t = adain(fc, starry.target_mean, starry.target_std)
    tm, ts = mean_std(t, eps=0.0)
    live = _live(s, starry.target_std)
    assert live.sum() > 400
    sm, ss = starry.target_mean.flatten()[live], starry.target_std.flatten()[live]
    torch.testing.assert_close(tm.flatten()[live], sm, atol=1e-3 * float(ss.max()), rtol=0)
    torch.testing.assert_close(ts.flatten()[live], ss, rtol=1e-3, atol=0)
    # (C,) and (N, C) statistics and bf16 features are accepted; the result is float32.
    t2 = adain(fc.bfloat16(), starry.target_mean.flatten(), starry.target_std.view(1, -1))
    assert t2.dtype == torch.float32 and t2.shape == fc.shape
    with pytest.raises(ValueError, match="style_mean"):
        adain(fc, torch.zeros(1, 256, 1, 1), starry.target_std)
    # The style features hold relu1_1 .. relu4_1 statistics of the painting.
    assert starry.layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    assert starry.mean["relu1_1"].shape == (1, 64, 1, 1) and starry.size == (60, 96)


def test_alpha_interpolates_between_content_and_style_features(model, photo, starry):
    with torch.no_grad():
        fc = model.encode_content(photo)
        t = model.target(fc, starry)
        # alpha=0: the decoder's reconstruction of the content (clipped to [0, 1] like every output)
        assert torch.equal(model(photo, starry, alpha=0.0), model.decode(fc).clamp(0, 1))
        assert torch.equal(model(photo, starry), model.decode(t).clamp(0, 1))
        half = model(photo, starry, alpha=0.5)
        torch.testing.assert_close(half, model.decode(0.5 * t + 0.5 * fc).clamp(0, 1), atol=1e-5, rtol=0)
        full, none = model(photo, starry), model(photo, starry, alpha=0.0)
    assert half.shape == photo.shape and 0 <= float(half.min()) and float(half.max()) <= 1
    assert not torch.allclose(full, none, atol=1e-6, rtol=0)  # the style changes the (untrained) decoding
    for bad in (1.5, -0.1, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="alpha"):
            model(photo, starry, alpha=bad)


def test_any_image_size_comes_back_at_its_size(model, starry):
    x = img.load_image(data_file("content/000000000086.jpg"), size=90)  # 90 x 72: pad to 96 x 72
    assert x.shape[-2:] == (90, 72)
    with torch.no_grad():
        y = model(x, starry)
    assert y.shape == x.shape and y.dtype == torch.float32
    with pytest.raises(ValueError, match="at least 16"):
        model(torch.rand(1, 3, 12, 40), starry)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model(torch.rand(3, 64, 64), starry)
    with pytest.raises(ValueError, match="StyleFeatures"):
        model(x, torch.rand(1, 3, 64, 64))


def test_blend_weights_interpolate_the_targets(model, photo, starry, scream):
    with torch.no_grad():
        single = model(photo, starry)
        assert torch.equal(model(photo, [starry, scream], blend=[1, 0]), single)
        assert torch.equal(model(photo, [starry, scream], blend=(0.0, 3.0)), model(photo, scream))
        fc = model.encode_content(photo)
        mixed = model.target(fc, [starry, scream], blend=[2, 2])
        torch.testing.assert_close(mixed, 0.5 * model.target(fc, starry) + 0.5 * model.target(fc, scream))
        torch.testing.assert_close(model.target(fc, [starry, scream]), mixed)  # equal weights by default
        torch.testing.assert_close(model(photo, [starry, scream], blend=[0.5, 0.5]), model.decode(mixed).clamp(0, 1),
                                   atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="1 weight"):
        model(photo, [starry, scream], blend=[1.0])
    with pytest.raises(ValueError, match="3 weight"):
        model(photo, [starry, scream], blend=[1, 0, 0])
    with pytest.raises(ValueError, match="non-negative"):
        model(photo, [starry, scream], blend=[1, -1])
    with pytest.raises(ValueError, match="all be zero"):
        model(photo, [starry, scream], blend=[0, 0])


def test_mask_puts_each_style_on_its_side(model, photo, starry, scream):
    h, w = photo.shape[-2:]  # 64 x 96: relu4_1 grid 8 x 12
    mask = torch.zeros(1, 1, h, w)
    mask[..., : w // 2] = 1.0  # style 0 (Starry Night) on the left, style 1 (The Scream) on the right
    fc = model.encode_content(photo)
    grid = torch.nn.functional.avg_pool2d(mask, 8)
    assert set(grid.unique().tolist()) == {0.0, 1.0}
    t = model.target(fc, [starry, scream], mask=grid)
    left, right = t[..., : 6], t[..., 6:]
    _, c_left = mean_std(fc[..., :6])
    _, c_right = mean_std(fc[..., 6:])
    for part, style, c_std in ((left, starry, c_left), (right, scream, c_right)):
        pm, ps = mean_std(part, eps=0.0)
        live = _live(c_std, style.target_std)
        assert live.sum() > 300
        sm, ss = style.target_mean.flatten()[live], style.target_std.flatten()[live]
        torch.testing.assert_close(pm.flatten()[live], sm, atol=1e-3 * float(ss.max()), rtol=0)
        torch.testing.assert_close(ps.flatten()[live], ss, rtol=1e-3, atol=0)
    # The two styles' means differ, so each side really got its own style.
    assert float((starry.target_mean - scream.target_mean).abs().max()) > 10
    with torch.no_grad():
        split = model(photo, [starry, scream], mask=mask)
        assert split.shape == photo.shape
        # An all-ones mask is the first style alone, an all-zeros mask the second.
        torch.testing.assert_close(model(photo, [starry, scream], mask=torch.ones(1, 1, h, w)),
                                   model(photo, starry), atol=2e-4, rtol=0)
        torch.testing.assert_close(model(photo, [starry, scream], mask=torch.zeros(1, 1, h, w)),
                                   model(photo, scream), atol=2e-4, rtol=0)
    with pytest.raises(ValueError, match="exactly two styles"):
        model(photo, starry, mask=mask)
    with pytest.raises(ValueError, match="exactly two styles"):
        model(photo, [starry, scream, starry], mask=mask)
    with pytest.raises(ValueError, match="mask must have shape"):
        model(photo, [starry, scream], mask=mask[..., :32])
    with pytest.raises(ValueError, match="mask must have shape"):
        model(photo, [starry, scream], mask=mask[0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model(photo, [starry, scream], mask=mask * 2)
    with pytest.raises(ValueError, match="not both"):
        model(photo, [starry, scream], blend=[1, 1], mask=mask)


def test_cached_style_features_equal_recomputing(model, photo, astronaut, starry):
    style_image = img.load_image(data_file("styles/starry_night.jpg"), size=96)
    frames = [photo, astronaut, torch.flip(astronaut, dims=[3])]
    with torch.no_grad():
        cached = [model(f, starry, alpha=0.8) for f in frames]
        fresh = [model(f, model.encode_style(style_image), alpha=0.8) for f in frames]
        for a, b in zip(cached, fresh):
            assert torch.equal(a, b)
        # One StyleFeatures serves a batch of frames as well.
        batch = model(torch.cat(frames[1:]), starry, alpha=0.8)
        torch.testing.assert_close(batch, torch.cat(cached[1:]), atol=1e-5, rtol=0)
    two = model.encode_style(torch.cat([astronaut, astronaut.flip(3)]))
    assert two.batch == 2 and two.select(1).batch == 1
    torch.testing.assert_close(two.select(0).target_mean, model.encode_style(astronaut).target_mean, rtol=1e-5, atol=0)
    moved = starry.to("cpu")
    assert isinstance(moved, StyleFeatures) and torch.equal(moved.target_std, starry.target_std)
    with pytest.raises(ValueError, match="1 or one per content image"):
        model(photo, model.encode_style(torch.cat([astronaut] * 3)))


# --------------------------------------------------------------------------- training


def tiny_config(tmp, **kw):
    photos, styles = tmp / "photos", tmp / "styles"
    if not photos.exists():
        photos.mkdir()
        styles.mkdir()
        for name in ("000000000030.jpg", "000000000086.jpg", "000000000072.jpg", "000000000089.jpg"):
            shutil.copy(data_file(f"content/{name}"), photos / name)
        for name in ("starry_night.jpg", "the_scream.jpg", "great_wave.jpg"):
            shutil.copy(data_file(f"styles/{name}"), styles / name)
    # out in a folder that does not exist yet: training creates it
    base = dict(content=photos, styles=styles, out=tmp / "runs" / "adain", image_size=64, batch_size=2, steps=8,
                lr=1e-3, width=0.25, precision="fp32", device="cpu", checkpoint_every=0, seed=3)
    base.update(kw)
    return AdaINTrainConfig(**base)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, encoder):
    tmp = tmp_path_factory.mktemp("adain")
    trainer = AdaINTrainer(tiny_config(tmp, preview_every=4), encoder=encoder)
    held_out = [trainer.batch(1000 + i) for i in range(3)]  # crops no step trains on

    def eval_loss():
        with torch.no_grad():
            return sum(float(trainer.losses(c, s)["total"]) for c, s in held_out)

    trainer.network.calibrate(trainer.batch(0)[0])  # what train() does first (same photos)
    before = eval_loss()
    steps, previews = [], []
    card = trainer.train(callback=lambda step, losses, ips: steps.append((step, losses)),
                         preview_callback=lambda step, im: previews.append((step, tuple(im.shape))))
    return trainer, card, steps, previews, before, eval_loss()


def test_training_lowers_the_loss_and_writes_a_model_card(trained, photo, starry):
    trainer, card, steps, previews, before, after = trained
    assert after < 0.85 * before, (before, after)
    assert [s for s, _ in steps] == list(range(1, 9))
    assert all(set(losses) == {"content", "style", "pixel", "total"} and all(map(math.isfinite, losses.values()))
               for _, losses in steps)
    assert previews == [(4, (1, 3, 64, 256)), (8, (1, 3, 64, 256))]  # photo + 3 styles
    paths = trainer.paths
    assert paths["weights"].is_file() and paths["checkpoint"].is_file()
    assert json.loads(paths["card"].read_text()) == card
    assert card["format"] == "atelier-adain-decoder" and card["steps"] == 8
    assert card["sha256"] == hashlib.sha256(paths["weights"].read_bytes()).hexdigest()
    arch = card["architecture"]
    assert arch["width"] == 0.25 and arch["encoder"] == {"arch": "vgg19", "layer": "relu4_1", "weights": None,
                                                         "pooling": "max"}
    assert arch["feature_scale"] == float(trainer.model.feature_scale) < 1 and "Huang" in arch["papers"][0]
    assert card["style_images"]["count"] == 3 and card["training_images"]["count"] == 4
    assert card["hyperparameters"]["style_weight"] == 10.0 and card["hyperparameters"]["lr"] == 1e-3
    assert set(card["final_losses"]) == {"content", "style", "pixel", "total"}
    # Loss units: each layer's mean activation on the photos (the Caffe VGG19's deep layers are far larger)
    units = card["layer_scales"]
    assert list(units) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1"] and units == trainer.layer_scales
    assert 0 < units["relu1_1"] and 5 * units["relu1_1"] < units["relu4_1"]

    loaded = load_adain(paths["weights"])
    assert isinstance(loaded, AdaINModel) and not loaded.training and loaded.card["sha256"] == card["sha256"]
    with torch.no_grad():
        ours = trainer.network.eval()(photo, starry)
        theirs = loaded(photo, loaded.encode_style(img.load_image(data_file("styles/starry_night.jpg"), size=96)))
    torch.testing.assert_close(theirs, ours, atol=1e-2, rtol=0)  # float16 weights


def test_interrupt_and_resume_continue_exactly(tmp_path, encoder):
    cfg = tiny_config(tmp_path, steps=4)
    seen = []

    def ctrl_c_at_2(step, losses, ips):
        seen.append(step)
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C: the step finishes, then the run stops

    first = AdaINTrainer(cfg, encoder=encoder)
    with pytest.raises(KeyboardInterrupt):
        first.train(callback=ctrl_c_at_2)
    assert seen == [1, 2] and not first.paths["weights"].exists()
    ckpt = torch.load(first.paths["checkpoint"], weights_only=True)
    assert ckpt["step"] == 2 and [h["step"] for h in ckpt["history"]] == [1, 2]
    assert ckpt["format"] == "atelier-adain-checkpoint"

    resumed = AdaINTrainer(cfg, encoder=encoder)
    after = []
    card = resumed.train(callback=lambda step, losses, ips: after.append(step), resume=True)
    assert after == [3, 4] and card["steps"] == 4
    assert [h["step"] for h in resumed.history] == [1, 2, 3, 4] and resumed.history[:2] == first.history

    straight = AdaINTrainer(dataclasses.replace(cfg, out=tmp_path / "straight"), encoder=encoder)
    straight.train()
    assert [h["total"] for h in resumed.history] == pytest.approx([h["total"] for h in straight.history], rel=1e-5)
    for (name, a), b in zip(resumed.model.state_dict().items(), straight.model.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)

    with pytest.raises(InputError, match="image_size"):
        AdaINTrainer(dataclasses.replace(cfg, image_size=48), encoder=encoder).train(resume=True)


def test_corrupt_decoder_file_is_a_clear_input_error(trained, tmp_path):
    trainer = trained[0]
    weights = tmp_path / "copy.safetensors"
    shutil.copy(trainer.paths["weights"], weights)
    shutil.copy(trainer.paths["card"], tmp_path / "copy.json")
    load_adain(weights)  # the intact copy loads
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(InputError, match=r"copy\.safetensors.*sha256"):
        load_adain(weights)
    (tmp_path / "copy.json").unlink()
    with pytest.raises(InputError, match="model card"):
        load_adain(weights)


def test_bad_training_inputs(tmp_path):
    cfg = tiny_config(tmp_path)
    with pytest.raises(InputError, match="style images.*not found"):
        AdaINTrainer(dataclasses.replace(cfg, styles=tmp_path / "no_such_folder"))
    with pytest.raises(ValueError, match="style images"):
        AdaINTrainer(dataclasses.replace(cfg, styles=[]))
    with pytest.raises(ValueError, match="lr decay"):
        AdaINTrainer(dataclasses.replace(cfg, lr_decay=-1.0))


# --------------------------------------------------------------------------- command line


def _cli(*args):
    from typer.testing import CliRunner

    from atelier.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_stylize_method_adain_with_alpha_blend_and_colour(trained, tmp_path):
    from atelier.io.images import read_metadata

    decoder = trained[0].paths["weights"]
    content, starry, scream = data_file("content/000000000030.jpg"), data_file("styles/starry_night.jpg"), \
        data_file("styles/the_scream.jpg")
    out = tmp_path / "out.png"
    r = _cli("stylize", content, "--style", starry, "--method", "adain", "--decoder", decoder, "--size", 96,
             "--style-size", 96, "--alpha", 0.7, "-o", out, "--precision", "fp32")
    assert r.exit_code == 0, r.output
    meta = read_metadata(out)
    assert meta["method"] == "adain" and meta["alpha"] == 0.7 and meta["decoder_sha256"] == trained[1]["sha256"]
    result = img.load_image(out)
    assert max(result.shape[-2:]) == 96
    # The same pixels as the Python API (8-bit rounding apart).
    model = load_adain(decoder)
    c = img.load_image(content, size=96)
    from atelier.methods.arbitrary.adain import adain_tensor

    expected = adain_tensor(model, c, [img.load_image(starry, size=96)], alpha=0.7, style_size=None)
    assert float((result - expected).abs().max()) <= 1.5 / 255

    blend = tmp_path / "blend.png"
    r = _cli("stylize", content, "--style", starry, "--style", scream, "--style-blend", "1,0", "--method", "adain",
             "--decoder", decoder, "--size", 96, "--style-size", 96, "-o", blend, "--precision", "fp32")
    assert r.exit_code == 0, r.output
    assert float((img.load_image(blend) - expected_full(model, c, starry)).abs().max()) <= 1.5 / 255

    lum = tmp_path / "lum.png"
    r = _cli("stylize", content, "--style", starry, "--method", "adain", "--decoder", decoder, "--size", 96,
             "--style-size", 96, "--preserve-color", "luminance", "-o", lum, "--precision", "fp32")
    assert r.exit_code == 0, r.output
    # Luminance-only transfer keeps the photo's chroma (Cb, Cr), up to gamut clipping and 8-bit rounding.
    photo = color.rgb_to_ycbcr(c)[:, 1:]

    def chroma_change(path):
        return float((color.rgb_to_ycbcr(img.load_image(path))[:, 1:] - photo).abs().mean())

    assert chroma_change(lum) < 0.5 * chroma_change(blend), (chroma_change(lum), chroma_change(blend))


def expected_full(model, c, style_path):
    from atelier.methods.arbitrary.adain import adain_tensor

    return adain_tensor(model, c, [img.load_image(style_path, size=96)], style_size=None)


def test_stylize_adain_mask_errors_and_resizing(trained, tmp_path):
    from PIL import Image

    decoder = trained[0].paths["weights"]
    content, starry, scream = data_file("content/000000000030.jpg"), data_file("styles/starry_night.jpg"), \
        data_file("styles/the_scream.jpg")
    common = ["--method", "adain", "--decoder", decoder, "--size", 96, "--style-size", 96, "--precision", "fp32"]
    small = tmp_path / "half.png"  # left half white: 40x30, not the content's 96x64
    a = torch.zeros(30, 40, dtype=torch.uint8)
    a[:, :20] = 255
    Image.fromarray(a.numpy()).save(small)
    out = tmp_path / "masked.png"
    r = _cli("stylize", content, "-s", starry, "-s", scream, "--mask", small, "-o", out, *common)
    assert r.exit_code == 0, r.output
    assert "resized" in r.output and "half.png" in r.output
    masked = img.load_image(out)
    only = []
    for style in (starry, scream):
        single = tmp_path / f"only-{style.stem}.png"
        assert _cli("stylize", content, "-s", style, "-o", single, *common).exit_code == 0
        only.append(img.load_image(single))
    left, right = masked[..., :40], masked[..., 56:]
    # Each side is the single-style result there (away from the edge).
    assert float((left - only[0][..., :40]).abs().mean()) < float((left - only[1][..., :40]).abs().mean())
    assert float((right - only[1][..., 56:]).abs().mean()) < float((right - only[0][..., 56:]).abs().mean())

    bad = tmp_path / "mask.png"
    bad.write_text("not an image")
    out2 = tmp_path / "never.png"
    r = _cli("stylize", content, "-s", starry, "-s", scream, "--mask", bad, "-o", out2, *common)
    assert r.exit_code == 2 and "mask.png" in r.output and not out2.exists()
    # one mask fits one style (the photo where black) or two; three styles need three (issue 28)
    r = _cli("stylize", content, "-s", starry, "-s", scream, "-s", starry, "--mask", small, "-o", out2, *common)
    assert r.exit_code == 2 and "one --mask per style" in r.output and not out2.exists()
    r = _cli("stylize", content, "-o", out2, *common)
    assert r.exit_code == 2 and "--style" in r.output and not out2.exists()
    r = _cli("stylize", content, "-s", starry, "--alpha", 1.5, "-o", out2, *common)
    assert r.exit_code == 2 and "alpha" in r.output and not out2.exists()


def test_train_adain_command_trains_and_refuses_to_overwrite(tmp_path):
    cfg = tiny_config(tmp_path)
    out = tmp_path / "cli-decoder.safetensors"
    args = ["train-adain", "-c", cfg.content, "-s", cfg.styles, "-o", out, "--image-size", 64, "--batch-size", 2,
            "--steps", 2, "--width", 0.25, "--precision", "fp32", "--device", "cpu", "--checkpoint-every", 1,
            "--preview-every", 0, "-q"]
    r = _cli(*args)
    assert r.exit_code == 0, r.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["format"] == "atelier-adain-decoder" and card["steps"] == 2
    r = _cli(*args)
    assert r.exit_code == 2 and "--resume" in r.output
    r = _cli(*args[:11], "--steps", 3, *args[13:], "--resume")
    assert r.exit_code == 0, r.output
    assert json.loads(out.with_suffix(".json").read_text())["steps"] == 3
    r = _cli("train-adain", "-c", cfg.content, "-s", tmp_path / "nowhere", "-o", tmp_path / "x", "--steps", 1)
    assert r.exit_code == 2 and "nowhere" in r.output


# --------------------------------------------------------------------------- masks at any size


def _mask_case(model, photo, starry, scream, h, w):
    """Stylize ``photo`` resized to h x w with a mask whose top-left region is style 0; check the
    output size, the mask grid the AdaIN layer gets, and that all-ones / all-zeros masks give
    the single styles."""
    import torch.nn.functional as F

    x = img.resize_to(photo, h, w)
    mask = torch.zeros(1, 1, h, w)
    mask[..., : max(1, h // 3), : max(1, (2 * w) // 3)] = 1.0  # not symmetric in h and w
    ph, pw = (-h) % 8, (-w) % 8
    # the mask is padded like the image (bottom by ph rows, right by pw columns), then pooled 8x8
    padded = F.pad(mask, (0, pw, 0, ph), mode="reflect") if ph or pw else mask
    want = F.avg_pool2d(padded, 8)
    assert want.shape[-2:] == ((h + ph) // 8, (w + pw) // 8)
    grids = []
    target = model.target

    def spy(fc, styles, blend=None, mask=None):
        grids.append(mask)
        return target(fc, styles, blend=blend, mask=mask)

    model.target = spy
    try:
        with torch.no_grad():
            out = model(x, [starry, scream], mask=mask)
            ones = model(x, [starry, scream], mask=torch.ones(1, 1, h, w))
            zeros = model(x, [starry, scream], mask=torch.zeros(1, 1, h, w))
            alone0, alone1 = model(x, starry), model(x, scream)
    finally:
        del model.target
    assert out.shape == x.shape and bool(torch.isfinite(out).all())
    torch.testing.assert_close(grids[0], want, atol=1e-6, rtol=0)
    torch.testing.assert_close(ones, alone0, atol=2e-4, rtol=0)
    torch.testing.assert_close(zeros, alone1, atol=2e-4, rtol=0)


@pytest.mark.parametrize("h, w", [(90, 72), (72, 90), (41, 67), (17, 16)])
def test_mask_on_sizes_not_divisible_by_8(model, photo, starry, scream, h, w):
    _mask_case(model, photo, starry, scream, h, w)


def test_mask_on_any_size_property(model, photo, starry, scream):
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=15, deadline=None, derandomize=True)
    @given(h=st.integers(16, 80), w=st.integers(16, 80))
    def check(h, w):
        _mask_case(model, photo, starry, scream, h, w)

    check()
