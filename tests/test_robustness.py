"""Robustness (issue 15): corruptions, the pre-filter, the robustness study and command, the
corruption augmentation of feed-forward training, and the set scores (FID, ArtFID-style,
colour histogram distance), on real photos and paintings from ../shared/data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from atelier.imaging import corrupt
from atelier.io.images import load_image
from atelier.imaging.prefilter import blockiness, choose, noise_sigma, prefilter

from conftest import data_file

runner = CliRunner()


def _cli(*args):
    from atelier.cli import app

    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def photo():
    return load_image(data_file("content/000000000030.jpg"), size=192)


def test_corruptions_are_deterministic_and_as_strong_as_intended(photo):
    p = {q: corrupt.psnr(corrupt.jpeg(photo, q), photo) for q in (90, 50, 20, 10)}
    assert p[90] > p[50] > p[20] > p[10] > 20, p
    assert torch.equal(corrupt.jpeg(photo, 20), corrupt.jpeg(photo, 20))
    n = {s: corrupt.psnr(corrupt.gaussian_noise(photo, s, seed=1), photo) for s in (0.02, 0.05, 0.1)}
    assert n[0.02] > n[0.05] > n[0.1], n
    assert abs(n[0.1] - 20.0) < 1.0  # sigma 0.1 -> 20 dB, less a little for the clipping at 0 and 1
    a, b = corrupt.gaussian_noise(photo, 0.05, seed=3), corrupt.gaussian_noise(photo, 0.05, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, corrupt.gaussian_noise(photo, 0.05, seed=4))
    assert corrupt.psnr(corrupt.downscale_blur(photo, 2), photo) > corrupt.psnr(corrupt.downscale_blur(photo, 4), photo)
    assert [c.name for c in corrupt.STANDARD][:5] == ["jpeg90", "jpeg50", "jpeg20", "jpeg10", "noise0.02"]
    assert corrupt.parse("noise0.05") == corrupt.Corruption("noise", 0.05)
    with pytest.raises(ValueError):
        corrupt.parse("jpeg200")


def test_prefilter_raises_psnr_and_auto_picks_by_estimate(photo):
    noisy = corrupt.gaussian_noise(photo, 0.1, seed=0)
    cleaned, used = prefilter(noisy, "nlm")
    assert used == "nlm" and corrupt.psnr(cleaned, photo) > corrupt.psnr(noisy, photo) + 2.0
    blocky = corrupt.jpeg(photo, 10)
    deblocked, used = prefilter(blocky, "deblock")
    assert corrupt.psnr(deblocked, photo) > corrupt.psnr(blocky, photo)
    assert blockiness(blocky) > 1.2 > blockiness(photo)
    assert noise_sigma(noisy) > 0.05 > 0.013 > noise_sigma(photo)
    assert (choose(photo), choose(blocky), choose(noisy)) == ("none", "deblock", "nlm")
    out, used = prefilter(torch.cat([photo, noisy]), "auto")
    assert used == "none,nlm" and torch.equal(out[:1], photo)


@pytest.fixture(scope="module")
def scorer():
    from atelier.analysis.metrics import ScoreConfig, Scorer

    return Scorer(ScoreConfig(device="cpu"))


def test_robustness_of_a_feed_forward_model_on_a_real_photo(photo, scorer):
    from atelier.analysis.robustness import grid_image, robustness, summarize
    from atelier.methods.feedforward.apply import load_model, stylize_tensor

    net = load_model("starry_night", device="cpu").eval()
    x = photo[..., :64, :96].contiguous()
    style = load_image(data_file("styles/starry_night.jpg"), size=96)
    chosen = [corrupt.Corruption("jpeg", 10), corrupt.Corruption("jpeg", 90)]
    rows, images = robustness(lambda t: stylize_tensor(net, t, precision="fp32"), x, style, corruptions=chosen,
                              scorer=scorer, keep_images=True)
    assert [r.corruption for r in rows] == ["clean", "jpeg10", "jpeg90"]
    clean = rows[0]
    assert clean.perceptual == 0.0 and clean.ssim == pytest.approx(1.0) and math.isinf(clean.input_psnr)
    for r in rows[1:]:
        assert all(math.isfinite(v) for v in (r.ssim, r.perceptual, r.content_loss, r.style_loss, r.input_psnr))
        assert r.perceptual > 0 and r.ssim < 1
    assert rows[1].perceptual > rows[2].perceptual and rows[1].ssim < rows[2].ssim  # JPEG 10 moves it more than 90
    assert summarize(rows)["jpeg"]["perceptual"] > 0
    sheet = grid_image(rows, images)
    assert sheet.size[0] > 3 * 150 and sheet.size[1] > 2 * 100


def test_set_scores_fid_artfid_histogram(scorer):
    from atelier.analysis.metrics import art_fid, frechet_distance, histogram_distance

    paintings = [load_image(data_file(f"styles/{n}.jpg"), size=48) for n in ("starry_night", "the_scream")]
    photos = [load_image(data_file(f"content/{n}"), size=48) for n in ("000000000030.jpg", "000000000086.jpg")]
    same = art_fid(scorer.encoder, paintings, paintings, paintings, size=48)
    assert same["fid"] < 1e-6 * 100 and same["content_distance"] == 0.0 and same["art_fid"] == pytest.approx(1.0, abs=1e-4)
    other = art_fid(scorer.encoder, photos, paintings, paintings, size=48)
    assert other["fid"] > 1.0 and other["content_distance"] > 0.3 and other["art_fid"] > 2.0
    x = np.random.default_rng(0).normal(size=(5, 4))
    assert frechet_distance(x, x) < 1e-8 and frechet_distance(x, x + 1.0) == pytest.approx(4.0, rel=1e-6)
    assert histogram_distance(paintings[0], paintings[0]) == 0.0
    assert 0.3 < histogram_distance(paintings[0], paintings[1]) <= 1.0
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(x[:1], x)


def test_augment_corruptions_changes_the_input_not_the_target(tmp_path):
    from atelier.methods.feedforward.train import FeedForwardTrainer, TrainConfig
    from atelier.training.augment import corrupt_batch

    photos = [data_file(f"content/{n}") for n in ("000000000030.jpg", "000000000086.jpg")]
    cfg = TrainConfig(styles=[data_file("styles/starry_night.jpg")], content=photos, out=tmp_path / "m",
                      image_size=48, batch_size=2, steps=1, width=0.25, device="cpu", precision="fp32",
                      checkpoint_every=0, augment_corruptions=1.0)
    tr = FeedForwardTrainer(cfg)
    x = tr.batch(0)
    before = x.clone()
    inp = tr.network_input(x, 0)
    assert torch.equal(x, before) and inp.shape == x.shape
    assert all(not torch.equal(inp[i], x[i]) for i in range(2))
    assert torch.equal(inp, tr.network_input(x, 0)) and not torch.equal(inp, tr.network_input(x, 1))
    _, kinds = corrupt_batch(x, 0, 0, 1.0)
    assert all(k != "none" for k in kinds)
    assert corrupt_batch(x, 0, 0, 0.0)[1] == ["none"] * 2
    tr.style_targets()  # encodes the style image; the next encoder call is the content target's
    seen = {}
    model_forward, encoder_forward = tr.model.forward, tr.encoder.forward
    tr.model.forward = lambda t, *a, **k: seen.setdefault("model", t) is not None and model_forward(t, *a, **k)
    tr.encoder.forward = lambda t, layers, *a, **k: (seen.setdefault("target", t), encoder_forward(t, layers, *a, **k))[1]
    tr.losses(x, torch.zeros(2, dtype=torch.long), inp)
    assert torch.equal(seen["model"], inp) and torch.equal(seen["target"], x)  # fed corrupted, scored against clean
    plain = FeedForwardTrainer(TrainConfig(**{**cfg.__dict__, "augment_corruptions": 0.0, "out": tmp_path / "p"}))
    assert plain.network_input(x, 0) is x
    with pytest.raises(ValueError, match="augment_corruptions"):
        TrainConfig(**{**cfg.__dict__, "augment_corruptions": 1.5}).validate()


def test_robustness_command_writes_grid_and_json(tmp_path):
    grid, report = tmp_path / "grid.png", tmp_path / "r.json"
    r = _cli("robustness", data_file("content/000000000194.jpg"), "-m", "starry_night", "-s",
             data_file("styles/starry_night.jpg"), "--size", 64, "--corruptions", "noise0.1",
             "--prefilter", "auto", "-o", grid, "--json", report, "-q")
    assert r.exit_code == 0, r.output
    data = json.loads(report.read_text())
    assert [row["corruption"] for row in data["rows"]] == ["clean", "noise0.1"]
    assert data["rows"][1]["prefilter"] == "nlm" and data["rows"][0]["perceptual"] == 0.0
    assert Image.open(grid).size[0] > 200


def test_evaluate_set_command(tmp_path):
    styles = [data_file(f"styles/{n}.jpg") for n in ("starry_night", "the_scream")]
    r = _cli("evaluate-set", *styles, "-c", styles[0], "-c", styles[1], "-s", styles[0], "-s", styles[1],
             "--size", 48, "-o", tmp_path / "s.json")
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["content_distance"] == 0.0 and s["fid"] < 1e-3 and "ArtFID-style" in r.output


@pytest.mark.parametrize("case", ["truncated", "not-an-image", "missing", "bad-prefilter", "bad-corruption",
                                  "no-style", "not-png", "set-mismatch", "set-truncated"])
def test_bad_input_exits_2_with_one_line(tmp_path, case):
    good = data_file("content/000000000194.jpg")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(good.read_bytes()[:2000])
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    style = data_file("styles/starry_night.jpg")
    grid = tmp_path / "g.png"
    base = ["-m", "starry_night", "--size", 64, "--corruptions", "jpeg20", "-o", grid, "-q"]
    args = {
        "truncated": ["robustness", truncated, *base],
        "not-an-image": ["robustness", junk, *base],
        "missing": ["robustness", tmp_path / "nope.jpg", *base],
        "bad-prefilter": ["robustness", good, *base, "--prefilter", "sharpen"],
        "bad-corruption": ["robustness", good, "-m", "starry_night", "--corruptions", "jpeg999", "-o", grid],
        "no-style": ["robustness", good, "-m", "adain", "-o", grid],
        "not-png": ["robustness", good, "-m", "starry_night", "-o", tmp_path / "g.jpg"],
        "set-mismatch": ["evaluate-set", style, good, "-c", good, "-s", style, "-s", style],
        "set-truncated": ["evaluate-set", truncated, style, "-c", good, "-c", good, "-s", style, "-s", style],
    }[case]
    r = _cli(*args)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    assert not grid.exists() and not (tmp_path / "g.jpg").exists()


def test_evaluate_reports_style_embedding_and_histogram_distances(tmp_path):
    from atelier.io.images import save_image

    small = tmp_path / "starry.png"
    save_image(load_image(data_file("styles/starry_night.jpg"), size=64), small)
    r = _cli("evaluate", small, "-c", data_file("content/000000000030.jpg"), "-s", small, "-s",
             data_file("styles/the_scream.jpg"), "-o", tmp_path / "m.json")
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "m.json").read_text())
    emb, hist = m["style_embedding_distance"], m["histogram_distance"]
    assert emb[0] < 1e-5 and emb[1] > 0.2 and hist[0] == 0.0 and hist[1] > 0.3, m


def test_stylize_prefilter_cleans_a_noisy_photo_first(tmp_path):
    from atelier.io.images import read_metadata, save_image

    noisy = tmp_path / "noisy.png"
    save_image(corrupt.gaussian_noise(load_image(data_file("content/000000000194.jpg"), size=64), 0.1, seed=0), noisy)
    out = tmp_path / "out.png"
    r = _cli("stylize", noisy, "-o", out, "--method", "starry_night", "--prefilter", "auto", "--precision", "fp32", "-q")
    assert r.exit_code == 0, r.output
    assert read_metadata(out)["prefilter"] == "nlm"
    r = _cli("stylize", noisy, "-o", tmp_path / "x.png", "--method", "starry_night", "--prefilter", "median")
    assert r.exit_code == 2 and r.output.strip().startswith("error:") and not (tmp_path / "x.png").exists()
