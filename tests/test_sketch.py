"""Photo to sketch (issue 17): the boundary benchmark, the contour heads and their training,
the shipped model against Canny, the sketch renderer, the API and the CLI."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from atelier.cli import app
from atelier.io import images as img
from atelier.core.errors import InputError
from atelier.methods.sketch import boundary_eval as be
from atelier.methods.sketch.data import bsds_split, load_boundaries
from atelier.networks.contours import CONTOUR_LAYERS, ContourNet, bilinear_points

from conftest import DATA, data_file

BSDS = DATA / "bsds500"
VAL_PHOTO = "101087"  # a BSDS500 val photo: never seen in training

runner = CliRunner()


def _ring(h=120, w=160, cy=60, cx=80, r=35) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.hypot(yy - cy, xx - cx)
    disk = d <= r
    from scipy.ndimage import binary_erosion

    return disk & ~binary_erosion(disk)  # a closed one-pixel outline


# -- the boundary metric on hand-made cases ------------------------------------------------
def test_metric_perfect_prediction_scores_one():
    gt = _ring()
    s = be.summarize(be.image_counts([gt], gt[None]), [0.5])
    assert s.ods == pytest.approx(1.0) and s.ois == pytest.approx(1.0)
    # the soft path (NMS, thresholds, thinning) keeps a perfect one-pixel map perfect
    assert be.evaluate_soft([gt.astype(np.float32)], [gt[None]]).ods == pytest.approx(1.0)


def test_metric_shift_within_tolerance_matches_and_beyond_does_not():
    gt = _ring()
    tol = be.TOLERANCE * np.hypot(*gt.shape)  # 1.5 px at 120x160
    near = np.roll(gt, 1, axis=1)
    correct, predicted, matched, human = be.match_counts(near, gt)
    assert 1 <= tol and correct == predicted == matched == human
    far = np.roll(gt, 6, axis=1)
    c, p, m, h = be.match_counts(far, gt)
    assert c / p < 0.35 and m / h < 0.35  # only where the ring runs along the shift


def test_metric_empty_prediction_and_one_to_one_matching():
    gt = _ring()
    s = be.summarize(be.image_counts([np.zeros_like(gt)], gt[None]), [0.5])
    assert s.ods == 0.0 and s.ois == 0.0
    double = gt | np.roll(gt, 1, axis=0)  # a two-pixel-wide line: half of it has no partner
    c, p, m, h = be.match_counts(double, gt)
    assert m == h and c < 0.75 * p
    # two annotators: recall is counted over both, precision against either
    other = np.roll(gt, 20, axis=1)
    c, p, m, h = be.match_counts(gt, np.stack([gt, other]))
    assert c == p and h == 2 * gt.sum() and m < 0.7 * h


def test_nms_thins_a_blurred_line_to_its_ridge():
    import cv2

    line = np.zeros((64, 64), np.float32)
    line[:, 30] = 1.0
    soft = cv2.GaussianBlur(line, (0, 0), 2.0)
    kept = be.nms(soft) > 0.01  # (the benchmark's thresholds start at 0.02)
    assert kept[8:56, 30].all() and kept[8:56].sum() == 48


def test_ois_sums_the_counts_of_each_photo_at_its_own_best_threshold():
    """ODS and OIS by hand on two photos (Arbelaez et al. 2011): photo A is found exactly at the
    first level and not at all at the second; photo B at the second level only, and only a quarter
    of its ring. OIS sums each photo's counts at its best level, then takes F (not the mean of the
    per-photo F); ODS picks the one level best for the summed counts."""
    ring_a, ring_b = _ring(r=15), _ring(r=55)
    half_b = ring_b & (np.mgrid[0:120, 0:160][1] < 55)  # about a quarter of it
    na, nb, nh = int(ring_a.sum()), int(ring_b.sum()), int(half_b.sum())
    empty = np.zeros_like(ring_a)
    s = be.evaluate_levels([[ring_a, empty], [empty, half_b]], [ring_a[None], ring_b[None]], labels=[1, 2])

    def f(p, r):
        return 2 * p * r / (p + r)

    # OIS: A at level 1 (na, na, na, na), B at level 2 (nh, nh, nh, nb), summed
    assert s.ois_precision == pytest.approx(1.0) and s.ois_recall == pytest.approx((na + nh) / (na + nb))
    assert s.ois == pytest.approx(f(1.0, (na + nh) / (na + nb)), abs=1e-12)
    mean_f = (1.0 + f(1.0, nh / nb)) / 2
    assert abs(s.ois - mean_f) > 0.05  # the two definitions differ here
    assert s.per_image == [[pytest.approx(1.0), 1.0], [pytest.approx(f(1.0, nh / nb)), 2.0]]
    # ODS: level 1 has R = na / (na + nb), level 2 R = nh / (na + nb), both P = 1
    r1, r2 = na / (na + nb), nh / (na + nb)
    assert s.ods == pytest.approx(max(f(1.0, r1), f(1.0, r2)), abs=1e-12)
    assert s.ods_threshold == (1 if r1 > r2 else 2) and s.ods < s.ois
    # and from raw counts: the sums of the chosen rows, not a mean of F
    counts = np.array([[[10, 10, 10, 10], [0, 0, 0, 10]], [[0, 40, 0, 40], [5, 10, 5, 40]]])
    t = be.summarize(counts, [0.3, 0.6])
    assert (t.ois_precision, t.ois_recall) == (pytest.approx(15 / 20), pytest.approx(15 / 50))
    assert t.ois == pytest.approx(f(0.75, 0.3)) and t.ods == pytest.approx(0.2)  # level 1: (10, 50, 10, 50)


def test_hysteresis_keeps_weak_edges_only_where_they_touch_a_strong_one():
    """Canny-style hysteresis in the stroke renderer: a strong line continued by a weak one is
    drawn whole; a weak line on its own is dropped; a strong line on its own is drawn."""
    import cv2

    from atelier.methods.sketch.draw import STYLES, strokes

    b = np.zeros((96, 128), np.float32)
    b[10:45, 30] = 0.9   # strong (above the high threshold 0.45 at detail 0.5)
    b[45:85, 30] = 0.3   # weak (between the low threshold 0.2 and the high), touching the strong part
    b[10:85, 70] = 0.3   # weak, alone
    b[10:85, 105] = 0.9  # strong, alone
    soft = cv2.GaussianBlur(b, (0, 0), 1.0) / cv2.GaussianBlur(b, (0, 0), 1.0).max() * 0.9
    soft = np.where(b > 0, np.maximum(soft, b * 0.95), soft)
    dark = strokes(soft, detail=0.5, style=STYLES["ink"])
    column = lambda x: dark[15:80, x - 2:x + 3].max(1)  # noqa: E731
    assert (column(30)[:28] > 0.3).all()  # the strong part
    assert (column(30)[40:] > 0.3).all(), column(30)  # its weak continuation
    assert (column(105) > 0.3).all()
    assert float(dark[:, 60:80].max()) < 0.05  # the lone weak line is not drawn


# -- the network and its training ------------------------------------------------------------
def test_point_logits_equal_the_full_maps():
    from atelier.encoders.vgg import get_encoder

    torch.manual_seed(0)
    x = img.load_image(data_file("bsds500/images/val/101087.jpg"), size=64)
    feats = get_encoder()(x, CONTOUR_LAYERS)
    net = ContourNet(8)
    h, w = x.shape[-2:]
    ys, xs = torch.randint(0, h, (40,)), torch.randint(0, w, (40,))
    with torch.no_grad():
        sides, fused = net(feats, (h, w))
        ps, pf = net.forward_points([bilinear_points(feats[n][0], ys, xs, h, w) for n in CONTOUR_LAYERS])
    assert torch.allclose(pf, fused[0, 0, ys, xs], atol=1e-3, rtol=1e-4)
    assert torch.allclose(ps, torch.cat(sides, 1)[0, :, ys, xs].T, atol=1e-3, rtol=1e-4)


@pytest.fixture(scope="module")
def one_photo_cache(tmp_path_factory):
    """A feature cache of one real BSDS500 train photo (4 s: one VGG19 pass)."""
    from atelier.encoders.vgg import get_encoder
    from atelier.methods.sketch import data

    root = tmp_path_factory.mktemp("bsds")
    for sub, ext in (("images", "jpg"), ("groundTruth", "mat")):
        (root / sub / "train").mkdir(parents=True)
        shutil.copy(BSDS / sub / "train" / f"100075.{ext}", root / sub / "train")
    return data.build_feature_cache(root, root / "cache", get_encoder(), "train", flips=False)


@pytest.mark.slow
def test_training_steps_lower_the_loss_on_a_real_photo(one_photo_cache, tmp_path):
    from atelier.methods.sketch.train import ContourTrainConfig, ContourTrainer

    assert len(one_photo_cache) == 1 and one_photo_cache.weight.sum() == pytest.approx(321 * 481, rel=1e-4)
    cfg = ContourTrainConfig(cache=one_photo_cache.folder, out=tmp_path / "c", hidden=8, batch_size=1, steps=10,
                             checkpoint_every=0)
    tr = ContourTrainer(cfg, cache=one_photo_cache)
    tr._before_training(False)
    with torch.no_grad():
        before = float(tr.losses_of([0])["total"])
    card = tr.train()
    with torch.no_grad():
        after = float(tr.losses_of([0])["total"])
    assert after < 0.9 * before
    assert card["format"] == "atelier-contour-net" and card["steps"] == 10
    assert card["training_images"]["count"] == 1

    # exact resume: 5 steps, stop, resume to 10 == 10 in one go
    cfg2 = ContourTrainConfig(**{**cfg.__dict__, "out": tmp_path / "r", "steps": 5})
    ContourTrainer(cfg2, cache=one_photo_cache).train()
    cfg2.steps = 10
    resumed = ContourTrainer(cfg2, cache=one_photo_cache)
    resumed.train(resume=True)
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k

    from atelier.methods.sketch.contours import load_contour_net

    net = load_contour_net(tmp_path / "c.safetensors")
    assert net.hidden == 8
    blob = bytearray((tmp_path / "c.safetensors").read_bytes())
    blob[-3] ^= 0xFF
    (tmp_path / "c.safetensors").write_bytes(bytes(blob))
    with pytest.raises(InputError, match="sha256"):
        load_contour_net(tmp_path / "c.safetensors")


@pytest.mark.slow
def test_shipped_model_beats_canny_on_a_held_out_photo():
    from atelier.methods.sketch.contours import CANNY_HIGH, boundary_map, canny_levels

    item = next(i for i in bsds_split(BSDS, "val") if i.name == VAL_PHOTO)
    x, gts = img.load_image(item.image), load_boundaries(item.ground_truth)
    ours = be.summarize(be.image_counts(be.soft_levels(boundary_map(x)[0, 0].numpy()), gts), be.DEFAULT_THRESHOLDS)
    canny = max(be.summarize(be.image_counts(canny_levels(x, CANNY_HIGH, s), gts), CANNY_HIGH).ods
                for s in (1.0, 2.0, 3.0))
    assert ours.ods > canny + 0.03, (ours.ods, canny)


# -- the renderer, the API and the CLI --------------------------------------------------------
@pytest.fixture(scope="module")
def small_photo():
    return img.load_image(data_file("bsds500/images/val/101087.jpg"), size=160)


def test_sketch_styles_and_lines_only(small_photo):
    from atelier.methods.sketch.contours import boundary_map
    from atelier.methods.sketch.draw import sketch_tensor

    b = boundary_map(small_photo)
    outs = {s: sketch_tensor(small_photo, s, boundary=b) for s in ("pencil", "ink", "charcoal")}
    lines = sketch_tensor(small_photo, "pencil", lines_only=True, boundary=b)
    for y in [*outs.values(), lines]:
        assert y.shape == small_photo.shape and y.dtype == torch.float32 and 0 <= y.min() and y.max() <= 1
    assert float(lines.mean()) > float(outs["pencil"].mean()) + 0.05  # shading darkens
    assert (lines < 0.5).float().mean() > 0.01  # there are strokes
    more = sketch_tensor(small_photo, "pencil", lines_only=True, detail=1.0, boundary=b)
    less = sketch_tensor(small_photo, "pencil", lines_only=True, detail=0.0, boundary=b)
    assert (more < 0.5).sum() > (less < 0.5).sum()
    with pytest.raises(ValueError, match="style"):
        sketch_tensor(small_photo, "crayon", boundary=b)


def test_api_sketch_returns_an_image():
    import atelier

    import cv2

    photo = data_file("bsds500/images/val/101087.jpg")
    out = atelier.sketch(photo, size=96, lines_only=True)
    assert isinstance(out, Image.Image) and max(out.size) == 96
    grey = np.asarray(out.convert("L"), np.float32) / 255
    strokes = grey < 0.5
    assert 0.01 < strokes.mean() < 0.4 and np.median(grey) > 0.9  # lines on white paper, not a blank or a fill
    # the lines follow the photo's edges: its gradient is much larger under the strokes than elsewhere
    x = (img.load_image(photo, size=96)[0].mean(0).numpy() * 255).astype(np.float32)
    grad = np.hypot(cv2.Sobel(x, cv2.CV_32F, 1, 0), cv2.Sobel(x, cv2.CV_32F, 0, 1))
    assert grad.shape == grey.shape
    assert grad[strokes].mean() > 2 * grad[~strokes].mean(), (grad[strokes].mean(), grad[~strokes].mean())


def test_cli_bad_input_exits_2_with_one_line(tmp_path):
    photo = data_file("bsds500/images/val/101087.jpg")
    for args, words in (([tmp_path / "missing.jpg", "-o", tmp_path / "o"], "not found"),
                        ([photo, "-o", tmp_path / "o", "--style", "crayon"], "--style"),
                        ([photo, "-o", tmp_path / "o", "--detail", "2"], "--detail")):
        r = runner.invoke(app, ["sketch", *map(str, args)])
        assert r.exit_code == 2, r.output
        lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and words in lines[0], r.output
    assert not (tmp_path / "o").exists()


def test_cli_writes_sketches_for_a_file_and_a_folder(tmp_path):
    photo = data_file("bsds500/images/val/101087.jpg")
    out = tmp_path / "one.png"
    r = runner.invoke(app, ["sketch", str(photo), "-o", str(out), "--size", "128", "--style", "ink", "-q",
                               "--precision", "fp32"])
    assert r.exit_code == 0, r.output
    with Image.open(out) as im:
        assert max(im.size) == 128 and im.mode == "RGB"
    meta = img.read_metadata(out)
    assert meta["style"] == "ink" and meta["method"] == "sketch"
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photo, folder / "a.jpg")
    shutil.copy(data_file("bsds500/images/val/102061.jpg"), folder / "b.jpg")
    r = runner.invoke(app, ["sketch", str(folder), "-o", str(tmp_path / "out"), "--size", "96", "--lines-only", "-q",
                               "--precision", "fp32"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]


@pytest.mark.slow
def test_sweep_matching_has_the_cardinality_of_hopcroft_karp():
    """The threshold sweep (Kuhn's augmenting paths, warm-started) against SciPy's Hopcroft-Karp on
    a real photo's Canny edges at several thresholds and every annotator."""
    from atelier.methods.sketch.contours import CANNY_HIGH, canny_levels

    item = next(i for i in bsds_split(BSDS, "val") if i.name == VAL_PHOTO)
    x, gts = img.load_image(item.image), load_boundaries(item.ground_truth)
    levels = canny_levels(x, CANNY_HIGH[10:13:2], 1.0)
    counts = be.image_counts(levels, gts)
    r = be.TOLERANCE * np.hypot(*gts.shape[1:])
    for t, level in enumerate(levels):
        pts = np.argwhere(level)
        ref = sum(int(be._matched_rows(be._pairs(pts, np.argwhere(g), r)).sum()) for g in gts)
        assert counts[t, 2] == ref and counts[t, 1] == len(pts)


def test_train_contours_command_trains_resumes_and_the_sketch_uses_it(tmp_path):
    """`atelier train-contours` (issue 23: the recipe moved from scripts/ into the CLI): builds the
    feature cache, trains, exports a card; --resume continues; `atelier sketch --contours` uses it."""
    root = tmp_path / "bsds"
    for sub in ("images/train", "groundTruth/train"):
        (root / sub).mkdir(parents=True)
    for item in bsds_split(DATA / "bsds500", "train")[:2]:
        shutil.copy(item.image, root / "images" / "train" / item.image.name)
        shutil.copy(item.ground_truth, root / "groundTruth" / "train" / item.ground_truth.name)
    out = tmp_path / "net.safetensors"
    r = runner.invoke(app, ["train-contours", "--bsds", str(root), "-o", str(out), "--steps", "3",
                            "--batch-size", "1", "--hidden", "8", "-q"])
    assert r.exit_code == 0, r.output
    import json

    card = json.loads(out.with_suffix(".json").read_text())
    assert card["steps"] == 3 and card["format"] == "atelier-contour-net"
    r = runner.invoke(app, ["train-contours", "--bsds", str(root), "-o", str(out), "--steps", "5",
                            "--batch-size", "1", "--hidden", "8", "-q", "--resume"])
    assert r.exit_code == 0, r.output
    assert json.loads(out.with_suffix(".json").read_text())["steps"] == 5
    sk = tmp_path / "s.png"
    r = runner.invoke(app, ["sketch", str(data_file("content/000000000030.jpg")), "-o", str(sk), "--size", "96",
                            "--contours", str(out), "-q"])
    assert r.exit_code == 0 and sk.is_file(), r.output
    r = runner.invoke(app, ["train-contours", "--bsds", str(tmp_path), "-o", str(tmp_path / "x.safetensors")])
    assert r.exit_code == 2 and "not a BSDS500 folder" in r.output


def test_summary_scores_by_hand_with_edge_counts():
    """Every field of summarize() from hand-made counts (correct, predicted, matched, human):
    precision 0 for a level that predicts nothing, recall 0 for a photo with no human boundary,
    and levels with exactly one predicted or one human pixel; AP is the trapezoid rule over the
    dataset curve sorted by recall."""
    counts = np.array([[[3, 4, 1, 1], [1, 1, 1, 1], [0, 0, 0, 1], [0, 0, 0, 1]],
                       [[2, 8, 2, 4], [2, 3, 1, 4], [1, 1, 1, 4], [0, 0, 0, 4]]])
    s = be.summarize(counts, [0.25, 0.5, 0.75, 1.0])

    def f(p, r):
        return 2 * p * r / (p + r) if p + r else 0.0

    p, r = [5 / 12, 3 / 4, 1.0, 0.0], [3 / 5, 2 / 5, 1 / 5, 0.0]  # the summed rows, level by level
    assert s.curve == [[t, pytest.approx(a), pytest.approx(b), pytest.approx(f(a, b))]
                       for t, a, b in zip([0.25, 0.5, 0.75, 1.0], p, r)]
    assert (s.ods, s.ods_precision, s.ods_recall, s.ods_threshold) == (pytest.approx(f(0.75, 0.4)), 0.75, 0.4, 0.5)
    # photo 0: best at level 2 (P = R = 1); photo 1: at level 3 (P = 1, R = 1/4); OIS from (2, 2, 2, 5)
    assert s.per_image == [[pytest.approx(1.0), 0.5], [pytest.approx(f(1.0, 0.25)), 0.75]]
    assert (s.ois, s.ois_precision, s.ois_recall) == (pytest.approx(f(1.0, 0.4)), 1.0, 0.4)
    by_r = sorted(zip(r, p))
    ap = sum((r1 - r0) * (p0 + p1) / 2 for (r0, p0), (r1, p1) in zip(by_r, by_r[1:]))
    assert s.ap == pytest.approx(ap) and ap == pytest.approx(0.1 + 0.175 + 0.2 * (0.75 + 5 / 12) / 2)
    assert s.as_dict()["ap"] == s.ap and set(s.as_dict()) >= {"ods", "ois", "curve", "per_image"}
    none = be.summarize(np.array([[0, 3, 0, 0], [0, 0, 0, 0]]), [1, 2])  # one photo, no human boundary
    assert [row[1:] for row in none.curve] == [[0.0, 0.0, 0.0]] * 2 and none.ap == 0.0


def test_soft_levels_nms_and_tolerance_on_a_bsds_photo():
    """A value equal to a threshold is kept and an empty level is an all-False map; NMS is on by
    default in soft_levels and evaluate_soft (on the gradient of a BSDS photo, against its human
    maps); a one-pixel prediction on a one-pixel boundary matches; the tolerance given is used."""
    b = np.zeros((40, 40), np.float32)
    b[20, 8:32] = 0.5
    lv = be.soft_levels(b, [0.25, 0.5, 0.75], apply_nms=False)
    assert [int(m.sum()) for m in lv] == [24, 24, 0] and all(m.dtype == bool and m.shape == (40, 40) for m in lv)
    import cv2

    x = img.load_image(BSDS / "images/val" / f"{VAL_PHOTO}.jpg")[0].mean(0).numpy()
    g = np.hypot(cv2.Sobel(x, cv2.CV_32F, 1, 0), cv2.Sobel(x, cv2.CV_32F, 0, 1))[::2, ::2]
    soft = np.clip(g / np.quantile(g, 0.99), 0, 1).astype(np.float32)
    gts = load_boundaries(BSDS / "groundTruth/val" / f"{VAL_PHOTO}.mat")[:, ::2, ::2]
    ts = (0.2, 0.5, 0.8)
    thin_nms = be.soft_levels(be.nms(soft), ts, apply_nms=False)
    assert all(np.array_equal(a, c) for a, c in zip(be.soft_levels(soft, ts), thin_nms))
    by_hand = be.summarize(be.image_counts(thin_nms, gts), ts)
    assert be.evaluate_soft([soft], [gts], ts).curve == by_hand.curve
    assert be.evaluate_soft([soft], [gts], ts, apply_nms=False).curve != by_hand.curve
    one, far = np.zeros((40, 40), bool), np.zeros((40, 40), bool)
    one[5, 5], far[30, 30] = True, True
    assert be.match_counts(one, one) == (1, 1, 1, 1) and be.match_counts(one, far) == (0, 1, 0, 1)
    line, shifted = np.zeros((40, 40), bool), np.zeros((40, 40), bool)
    line[20, 8:32], shifted[23, 8:32] = True, True  # 3 px apart: beyond 0.0075 of the diagonal, within 0.1
    assert be.evaluate_levels([[line]], [shifted[None]], [1]).ods == 0.0
    assert be.evaluate_levels([[line]], [shifted[None]], [1], tolerance=0.1).ods == 1.0
    assert be.evaluate_soft([line.astype(np.float32)], [shifted[None]], [0.5], apply_nms=False, tolerance=0.1).ods == 1.0


def test_sweep_matchings_equal_hopcroft_karp_when_rows_come_and_go():
    """The incremental matching of image_counts (Kuhn's augmenting paths, kept from level to level)
    against SciPy's Hopcroft-Karp on every level, on the candidate pixels of a BSDS photo and its
    human maps; the levels are visited out of threshold order so rows also disappear."""
    import cv2

    x = img.load_image(BSDS / "images/val" / f"{VAL_PHOTO}.jpg")[0].mean(0).numpy()[::3, ::3]
    g = np.hypot(cv2.Sobel(x, cv2.CV_32F, 1, 0), cv2.Sobel(x, cv2.CV_32F, 0, 1))
    soft = np.clip(g / np.quantile(g, 0.99), 0, 1).astype(np.float32)
    gt = load_boundaries(BSDS / "groundTruth/val" / f"{VAL_PHOTO}.mat")[0, ::3, ::3]
    levels = be.soft_levels(soft, (0.3, 0.1, 0.6, 0.2, 0.45), apply_nms=False)  # shuffled thresholds
    cand = np.argwhere(np.logical_or.reduce(levels))
    active = [m[cand[:, 0], cand[:, 1]] for m in levels]
    graph = be._pairs(cand, np.argwhere(gt), 3.0)
    swept = be._sweep(active, graph.indptr, graph.indices, graph.shape[1])
    assert any((a & ~b).any() for a, b in zip(active[1:], active))  # some rows do disappear
    for a, rows in zip(active, swept):
        want = np.zeros(len(a), bool)
        want[np.flatnonzero(a)] = be._matched_rows(graph[np.flatnonzero(a)])
        assert not (rows & ~a).any() and int(rows.sum()) == int(want.sum()) > 0
