"""Collection analysis (issue 15): style embeddings, the incremental index, search, clustering
and the index / similar / cluster commands, on real paintings from ../shared/data."""

from __future__ import annotations

import csv
import json
import os
import shutil
import time

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from atelier.analysis.cluster import cluster_vectors, contact_sheet, pca_map
from atelier.analysis.embeddings import EmbeddingConfig, StyleEmbedder
from atelier.analysis.index import Collection, list_images
from atelier.io.images import load_image

from conftest import data_file

STYLES = ["starry_night", "the_scream", "great_wave", "composition_vii"]


@pytest.fixture(scope="module")
def embedder():
    return StyleEmbedder()


@pytest.fixture(scope="module")
def small():
    """A cheap configuration for tests of the index and the commands (64 px, 32 numbers)."""
    return StyleEmbedder(EmbeddingConfig(size=64, dim=32))


def _crop(image: torch.Tensor, top: float, left: float, frac: float) -> torch.Tensor:
    h, w = image.shape[-2:]
    ch, cw = int(h * frac), int(w * frac)
    y, x = int((h - ch) * top), int((w - cw) * left)
    return image[..., y:y + ch, x:x + cw]


def _paintings(tmp_path, names=STYLES):
    folder = (tmp_path / "paintings").resolve()
    folder.mkdir()
    for n in names:
        shutil.copy(data_file(f"styles/{n}.jpg"), folder / f"{n}.jpg")
    return folder


def test_embedding_is_deterministic_and_unit_length(embedder, style_path):
    a = embedder.embed_file(style_path)
    b = StyleEmbedder().embed_file(style_path)
    assert a.shape == (256,) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert abs(np.linalg.norm(a) - 1) < 1e-5


def test_shipped_whitening_is_verified_and_on_by_default(tmp_path, monkeypatch):
    from atelier.analysis import embeddings

    assert EmbeddingConfig().validate().whiten is True
    assert EmbeddingConfig(size=128).validate().whiten is False  # fitted for 256 px only
    mean, matrix = embeddings.load_whitening()
    assert mean.shape == (256,) and matrix.shape == (256, 256) and np.isfinite(matrix).all()
    bad = tmp_path / "style_whitening.safetensors"
    bad.write_bytes(embeddings.WHITENING_FILE.read_bytes()[:-8] + b"\0" * 8)
    shutil.copy(embeddings.WHITENING_FILE.with_suffix(".json"), tmp_path / "style_whitening.json")
    with pytest.raises(ValueError, match="sha256"):
        embeddings.load_whitening(bad)


def test_default_embedding_applies_the_shipped_whitening(embedder, style_path):
    """The default embedding, rebuilt by hand from the raw statistics: square roots, each layer's
    block to unit length, the seeded projection to 256 numbers, then the shipped whitening
    ``(x - mean) @ matrix`` and unit length; without whitening the last two steps are skipped."""
    from dataclasses import replace

    from atelier.analysis import embeddings

    assert embedder.config.whiten is True
    stats = embedder.statistics([load_image(style_path, size=256)])
    x = np.sqrt(np.maximum(stats.astype(np.float64), 0))
    widths = [2 * c for c in (64, 128, 256, 512, 512)]  # mean and std per channel, relu1_1 ... relu5_1
    blocks = np.split(x, np.cumsum(widths)[:-1], axis=1)
    x = np.concatenate([b / np.linalg.norm(b) for b in blocks], 1) / np.sqrt(5)
    x = x @ embeddings.projection_matrix(x.shape[1], 256, 0).astype(np.float64)
    mean, matrix = embeddings.load_whitening()
    white = (x - mean) @ matrix
    white /= np.linalg.norm(white)
    got = embedder.embed_file(style_path)
    assert np.abs(got - white[0]).max() < 1e-5
    plain = embeddings.embed_statistics(stats, replace(embedder.config, whiten=False))[0]
    assert np.abs(plain - x[0] / np.linalg.norm(x)).max() < 1e-5
    assert 1 - float(plain @ got) > 0.1  # the whitening changes the embedding substantially


def test_embedding_nearly_invariant_to_image_size(embedder, style_path, style2_path):
    full = load_image(style_path)
    half = load_image(style_path, size=max(full.shape[-2:]) // 2)
    other = load_image(style2_path)
    v = embedder.embed_images([full, half, other])
    same, diff = 1 - v[0] @ v[1], 1 - v[0] @ v[2]
    assert same < 0.002, same
    assert same < diff / 10, (same, diff)


def test_two_crops_of_one_painting_are_nearer_than_crops_of_another(embedder):
    images = [load_image(data_file(f"styles/{n}.jpg")) for n in STYLES]
    crops = []
    for im in images:  # two crops at different positions and scales of every painting
        crops += [_crop(im, 0.1, 0.2, 0.7), _crop(im, 0.9, 0.8, 0.5)]
    v = embedder.embed_images(crops)
    d = 1 - v @ v.T
    for i in range(len(images)):
        a, b = 2 * i, 2 * i + 1
        others = [j for j in range(len(crops)) if j // 2 != i]
        assert d[a, b] < d[a, others].min(), (STYLES[i], d[a, b], d[a, others])
        assert d[b, a] < d[b, others].min(), (STYLES[i], d[b, a], d[b, others])


def test_incremental_index_skips_unchanged_and_reembeds_changed(tmp_path, small, monkeypatch):
    folder = _paintings(tmp_path)
    (folder / "broken.jpg").write_bytes(b"not an image")
    db = tmp_path / "c.db"
    errors = []
    with Collection.create(db, embedder=small) as col:
        r = col.update(list_images(folder), prune_under=folder, on_error=lambda p, m: errors.append(p))
        assert len(r.embedded) == 4 and len(col) == 4
        assert [os.path.basename(p) for p, _ in r.failed] == ["broken.jpg"] and len(errors) == 1
        before = dict(zip(*col.items()))

    calls = []
    real = small.embed_files
    monkeypatch.setattr(small, "embed_files", lambda paths, **kw: (calls.append(list(paths)), real(paths, **kw))[1])
    with Collection.create(db, embedder=small) as col:
        r = col.update(list_images(folder), prune_under=folder)
        assert r.embedded == [] and r.unchanged == 4  # broken.jpg is tried again, and skipped again
        assert [c for c in calls if not all(p.endswith("broken.jpg") for p in c)] == []

        calls.clear()
        target = folder / "great_wave.jpg"
        os.utime(target, (time.time() + 5, time.time() + 5))  # touched, same bytes: reused by hash
        r = col.update(list_images(folder), prune_under=folder)
        assert r.embedded == [] and r.reused == [str(target)]

        Image.open(data_file("styles/water_lilies.jpg")).save(target, quality=90)  # new content, same name
        (folder / "the_scream.jpg").unlink()
        r = col.update(list_images(folder), prune_under=folder)
        assert r.embedded == [str(target)] and r.unchanged == 2
        assert [os.path.basename(p) for p in r.removed] == ["the_scream.jpg"]
        after = dict(zip(*col.items()))
        assert len(after) == 3
        assert not np.allclose(after[str(target)], before[str(target)])
        key = str(folder / "starry_night.jpg")
        assert np.array_equal(after[key], before[key])


def test_search_sees_every_update_made_on_the_same_collection_object(tmp_path, small):
    """The search cache is refreshed after each update on one open collection: a second update
    (a new file, a copy reused by hash, a pruned file) shows in items() and search() at once."""
    folder = _paintings(tmp_path, ["starry_night", "the_scream"])
    with Collection.create(tmp_path / "c.db", embedder=small) as col:
        col.update(list_images(folder))
        q = small.embed_file(folder / "starry_night.jpg")
        assert [h.path for h in col.search(q, k=5)][0] == str(folder / "starry_night.jpg")  # fills the cache
        shutil.copy(data_file("styles/great_wave.jpg"), folder / "great_wave.jpg")
        col.update(list_images(folder))  # second update, same object
        paths, mat = col.items()
        assert paths == sorted(str(folder / f"{n}.jpg") for n in ("great_wave", "starry_night", "the_scream"))
        assert mat.shape == (3, 32)
        wave = small.embed_file(folder / "great_wave.jpg")
        assert col.search(wave, k=1)[0].path == str(folder / "great_wave.jpg")
        shutil.copy(folder / "the_scream.jpg", folder / "copy.jpg")  # reused by hash, no embedding
        r = col.update(list_images(folder))
        assert r.reused == [str(folder / "copy.jpg")] and len(col.search(q, k=10)) == 4
        (folder / "starry_night.jpg").unlink()
        r = col.update(list_images(folder), prune_under=folder)
        assert len(r.removed) == 1 and str(folder / "starry_night.jpg") not in [h.path for h in col.search(q, k=10)]
        assert len(col.items()[0]) == len(col) == 3
        shutil.copy(data_file("styles/udnie.jpg"), folder / "udnie.jpg")  # streamed (batch-engine) update
        col.update(list_images(folder), embed=lambda ps: ((p, small.embed_file(p), None) for p in ps))
        udnie = small.embed_file(folder / "udnie.jpg")
        assert len(col.items()[0]) == 4 and col.search(udnie, k=1)[0].path == str(folder / "udnie.jpg")


def test_search_cosine_and_euclidean_agree(tmp_path, small):
    folder = _paintings(tmp_path)
    with Collection.create(tmp_path / "c.db", embedder=small) as col:
        col.update(list_images(folder))
        query = folder / "starry_night.jpg"
        cos = col.search_file(query, k=3, metric="cosine")
        euc = col.search_file(query, k=3, metric="euclidean")
        assert [h.path for h in cos] == [h.path for h in euc] and str(query.resolve()) not in [h.path for h in cos]
        for c, e in zip(cos, euc):
            assert abs(e.distance ** 2 - 2 * c.distance) < 1e-4
        assert [h.distance for h in cos] == sorted(h.distance for h in cos)
        assert col.search_file(query, k=1, include_self=True)[0].path == str(query.resolve())


def test_a_collection_refuses_another_embedding(tmp_path, small):
    db = tmp_path / "c.db"
    Collection.create(db, embedder=small).close()
    with pytest.raises(ValueError, match="another embedding"):
        Collection.create(db, EmbeddingConfig(size=64, dim=16))


def test_clustering_separates_two_groups_of_real_paintings(embedder):
    groups = {"great_wave": load_image(data_file("styles/great_wave.jpg")),
              "composition_vii": load_image(data_file("styles/composition_vii.jpg"))}
    crops, truth = [], []
    for g, (name, im) in enumerate(groups.items()):
        for top, left, frac in [(0, 0, 0.6), (1, 1, 0.6), (0.5, 0.5, 0.8), (0, 1, 0.5)]:
            crops.append(_crop(im, top, left, frac))
            truth.append(g)
    v = embedder.embed_images(crops)
    truth = np.array(truth)
    labels, k, _ = cluster_vectors(v, 2)
    assert len(set(labels[truth == 0])) == 1 and len(set(labels[truth == 1])) == 1
    assert labels[0] != labels[-1]
    labels, k, scores = cluster_vectors(v, "auto")  # auto may split a painting, but never mixes the two
    assert 2 <= k <= 4 and set(scores) == set(range(2, 8)), (k, scores)
    for c in range(k):
        assert len(set(truth[labels == c])) == 1, (labels, truth)
    assert pca_map(v).shape == (8, 2)


def test_contact_sheet_with_unreadable_file(tmp_path, style_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"junk")
    sheet = contact_sheet([str(style_path), str(bad)], ["a", "b"], thumb=64)
    # two tiles of 64 px in one row with 8 px gaps, a 30 px caption band under them
    assert sheet.mode == "RGB" and sheet.size == (8 + 2 * 72, 8 + 64 + 30 + 8)
    a = np.asarray(sheet, np.int16)
    thumb = Image.open(style_path).convert("RGB")
    thumb.thumbnail((64, 64), Image.Resampling.LANCZOS)  # the painting, shrunk, centred in its tile
    y0 = 8 + (64 - thumb.height) // 2
    x0 = 8 + (64 - thumb.width) // 2
    tile = a[y0:y0 + thumb.height, x0:x0 + thumb.width]
    assert np.abs(tile - np.asarray(thumb, np.int16)).max() <= 1
    grey = a[8:8 + 64, 80:80 + 64]  # the unreadable file: a grey tile with a word on it
    assert (grey == 200).all(-1).mean() > 0.8 and (grey < 150).any()
    for x in (8, 80):  # a caption under each tile
        assert (a[8 + 64 + 2:8 + 64 + 16, x:x + 20] < 128).any()


# --------------------------------------------------------------------------- commands

runner = CliRunner()


def _cli(*args):
    from atelier.cli import app

    return runner.invoke(app, [str(a) for a in args])


def test_index_similar_cluster_commands(tmp_path):
    folder = _paintings(tmp_path)
    db = tmp_path / "c.db"
    r = _cli("index", folder, "-o", db, "--size", 64, "--dim", 32, "-q")
    assert r.exit_code == 0, r.output
    assert "4 images (4 embedded" in r.output
    r = _cli("index", folder, "-o", db, "--size", 64, "--dim", 32, "-q")
    assert r.exit_code == 0 and "0 embedded" in r.output and "4 unchanged" in r.output
    sheet = tmp_path / "sheet.png"
    r = _cli("similar", folder / "the_scream.jpg", "--index", db, "-k", 2, "--metric", "euclidean",
             "--sheet", sheet)
    assert r.exit_code == 0, r.output
    assert Image.open(sheet).size[0] > 100
    outdir = tmp_path / "clusters"
    r = _cli("cluster", db, "--k", 2, "-o", outdir)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(outdir / "clusters.csv")))
    assert len(rows) == 4 and {r["cluster"] for r in rows} == {"0", "1"}
    assert sorted(p.name for p in outdir.glob("*.png")) == ["cluster_00.png", "cluster_01.png", "map.png"]


@pytest.fixture(scope="module")
def small_collection(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    folder = _paintings(tmp, ["the_scream", "udnie"])
    db = tmp / "c.db"
    assert _cli("index", folder, "-o", db, "--size", 64, "--dim", 32, "-q").exit_code == 0
    return folder, db


@pytest.mark.parametrize("case", ["no-folder", "empty-folder", "bad-size", "db-not-sqlite", "weights-missing",
                                  "similar-missing-db", "similar-bad-query", "similar-bad-metric", "sheet-not-png",
                                  "cluster-bad-k", "cluster-k-too-big", "cluster-out-is-file", "other-config",
                                  "whiten-elsewhere"])
def test_bad_input_exits_2_with_one_line(tmp_path, case, small_collection):
    folder, db = small_collection
    junk = tmp_path / "junk.db"
    junk.write_text("hello")
    empty = tmp_path / "empty"
    empty.mkdir()
    notdir = tmp_path / "file.txt"
    notdir.write_text("x")
    q = folder / "udnie.jpg"
    new_db = tmp_path / "new.db"
    args = {
        "no-folder": ["index", tmp_path / "nope", "-o", new_db],
        "empty-folder": ["index", empty, "-o", new_db],
        "bad-size": ["index", folder, "-o", new_db, "--size", 0],
        "db-not-sqlite": ["index", folder, "-o", junk],
        "weights-missing": ["index", folder, "-o", new_db, "--weights", tmp_path / "none.pth"],
        "similar-missing-db": ["similar", q, "--index", new_db],
        "similar-bad-query": ["similar", notdir, "--index", db],
        "similar-bad-metric": ["similar", q, "--index", db, "--metric", "manhattan"],
        "sheet-not-png": ["similar", q, "--index", db, "--sheet", tmp_path / "s.jpg"],
        "cluster-bad-k": ["cluster", db, "--k", "many", "-o", tmp_path / "out"],
        "cluster-k-too-big": ["cluster", db, "--k", 5, "-o", tmp_path / "out"],
        "cluster-out-is-file": ["cluster", db, "-o", notdir],
        "other-config": ["index", folder, "-o", db, "--size", 128],
        "whiten-elsewhere": ["index", folder, "-o", new_db, "--size", 128, "--whiten"],
    }[case]
    r = _cli(*args)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    assert not new_db.exists() and not (tmp_path / "out").exists() and not (tmp_path / "s.jpg").exists()
    assert junk.read_text() == "hello"


# --------------------------------------------------------------------------- classifier


def _labelled(tmp_path, per_label=6):
    """Van Gogh (the pack's vangogh2photo paintings) against other painters (StyleID's styles)."""
    rows = list(csv.DictReader(open(data_file("train/sources.csv"))))
    groups = {"vangogh": [r["file"] for r in rows if "vangogh2photo" in r["path_in_repo"]][:per_label],
              "other": [r["file"] for r in rows if r["repo"] == "jiwoogit/StyleID"][:per_label]}
    root = tmp_path / "labelled"
    for label, files in groups.items():
        (root / label).mkdir(parents=True)
        for f in files:
            shutil.copy(data_file(f"train/{f}"), root / label / os.path.basename(f))
    return root


def test_classifier_separates_two_real_groups_and_round_trips(tmp_path):
    from atelier.analysis.classify import StyleClassifier, train_classifier

    root = _labelled(tmp_path)
    clf, card = train_classifier(root, folds=3)
    cv = card["cross_validation"]
    assert cv["chance"] == 0.5 and cv["accuracy"] > 0.75, cv
    clf.save(tmp_path / "clf", card)
    back = StyleClassifier.load(tmp_path / "clf.safetensors")
    assert back.classes == ["other", "vangogh"]
    files = sorted((root / "vangogh").iterdir())[:2]
    done, probs = back.predict_files(files)
    assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1)
    raw = (tmp_path / "clf.safetensors").read_bytes()
    (tmp_path / "clf.safetensors").write_bytes(raw[:-4] + b"\0\0\0\0")
    with pytest.raises(ValueError, match="sha256"):
        StyleClassifier.load(tmp_path / "clf.safetensors")


def test_exported_classifier_gives_scikit_learns_probabilities(tmp_path):
    """The exported probe (standardization folded into coef and intercept, float32 safetensors)
    gives the probabilities of the scikit-learn pipeline it came from, to 1e-6, for three labels
    (softmax) and for two (one logistic row), before and after a save / load round trip."""
    from atelier.analysis.classify import StyleClassifier, _folded, _probe, labelled_files, train_classifier

    cfg = EmbeddingConfig(size=64, dim=32)
    root = _labelled(tmp_path, per_label=3)
    rows = [r for r in csv.DictReader(open(data_file("train/sources.csv"))) if r["set"] == "photos"][:3]
    (root / "photo").mkdir()
    for r in rows:
        shutil.copy(data_file(f"train/{r['file']}"), root / "photo" / os.path.basename(r["file"]))
    clf3, card = train_classifier(root, folds=2, config=cfg)
    files, labels = labelled_files(root)
    _, vecs = StyleEmbedder(cfg).embed_files(files)
    labels = np.asarray(labels)
    ref3 = _probe(1.0, 0).fit(vecs, labels)
    two = labels != "photo"
    ref2 = _probe(1.0, 0).fit(vecs[two], labels[two])
    clf2 = StyleClassifier([str(c) for c in ref2.classes_], *_folded(ref2), clf3.identity)
    assert clf2.coef.shape == (1, 32) and clf3.coef.shape == (3, 32)
    for n, clf, ref, x in ((3, clf3, ref3, vecs), (2, clf2, ref2, vecs[two])):
        assert clf.classes == list(ref.classes_)
        clf.save(tmp_path / f"clf{n}", card)
        back = StyleClassifier.load(tmp_path / f"clf{n}.safetensors")
        want = ref.predict_proba(x)
        for c in (clf, back):
            assert np.abs(c.probabilities(x) - want).max() < 1e-6, n
        assert want.max(1).min() < 0.999 and want.min() < 0.5  # not saturated: the check has teeth


def test_classify_commands(tmp_path):
    root = _labelled(tmp_path, per_label=3)
    r = _cli("classify", "train", root, "-o", tmp_path / "clf", "--folds", 2, "-q")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "clf.json").is_file() and Image.open(tmp_path / "clf.confusion.png").size[0] > 100
    card = json.loads((tmp_path / "clf.json").read_text())
    assert card["format"] == "atelier-style-classifier" and card["trained_on"]["per_label"] == {"other": 3, "vangogh": 3}
    from atelier.analysis.classify import StyleClassifier

    images = [sorted((root / "other").iterdir())[0], sorted((root / "vangogh").iterdir())[0]]
    r = _cli("classify", "predict", tmp_path / "clf", *images, "--top", 2)
    assert r.exit_code == 0, r.output
    table = [[c.strip() for c in line.strip().strip("│").split("│")] for line in r.output.splitlines()
             if line.startswith("│")]
    shown = [(c[1], c[2]) for c in table if len(c) == 3 and c[1] and c[2]]
    _, probs = StyleClassifier.load(tmp_path / "clf.safetensors").predict_files(images)
    want = []
    for row in probs:  # each image's labels, most likely first, with the probabilities of the probe
        want += [(lab, f"{p:.3f}") for p, lab in sorted(zip(row, ["other", "vangogh"]), reverse=True)]
    assert shown == want, r.output
    assert [shown[0][0], shown[2][0]] == ["other", "vangogh"]  # training images: their own label first
    for args in (["classify", "train", root / "other", "-o", tmp_path / "x"],          # no label folders
                 ["classify", "train", root, "-o", tmp_path / "x", "--folds", 5],     # too few per label
                 ["classify", "predict", tmp_path / "nope", root / "other"],
                 ["classify", "predict", tmp_path / "clf", tmp_path / "missing.jpg"]):
        r = _cli(*args)
        assert r.exit_code == 2 and r.output.strip().startswith("error:") and len(r.output.strip().splitlines()) == 1, (args, r.output)
    assert not (tmp_path / "x.json").exists()


def test_index_with_a_torchvision_vgg16_file(tmp_path):
    """--weights: a torchvision-layout VGG16 (here built from VGG19's first layers) embeds and searches."""
    from atelier.encoders.vgg import conv_names, load_caffe_vgg19

    weights = load_caffe_vgg19()
    names16 = [n for n in conv_names("vgg19") if n not in ("conv3_4", "conv4_4", "conv5_4")]
    state = {}
    for i, name in enumerate(names16):
        state[f"features.{3 * i}.weight"], state[f"features.{3 * i}.bias"] = weights[name]
    pth = tmp_path / "vgg16.pth"
    torch.save(state, pth)
    folder = _paintings(tmp_path, ["the_scream", "udnie", "great_wave"])
    db = tmp_path / "c16.db"
    r = _cli("index", folder, "-o", db, "--size", 64, "--dim", 32, "--weights", pth, "-q")
    assert r.exit_code == 0, r.output
    with Collection.open(db) as col:
        assert col.identity["encoder"].startswith("torchvision:") and len(col) == 3
        assert len(col.search_file(folder / "udnie.jpg", k=2)) == 2
    r = _cli("index", folder, "-o", db, "--size", 64, "--dim", 32, "-q")  # the default VGG19: refused
    assert r.exit_code == 2 and "another embedding" in r.output


def test_agglomerative_hdbscan_and_tsne_separate_two_groups_of_real_paintings(embedder, tmp_path):
    from atelier.analysis.cluster import tsne_map

    crops, truth = [], []
    for g, name in enumerate(("great_wave", "udnie")):
        im = load_image(data_file(f"styles/{name}.jpg"), size=320)
        for top, left, frac in [(0, 0, 0.6), (1, 1, 0.6), (0.5, 0.5, 0.8), (0, 1, 0.5)]:
            crops.append(_crop(im, top, left, frac))
            truth.append(g)
    v, truth = embedder.embed_images(crops), np.array(truth)
    for algorithm in ("agglomerative", "hdbscan"):
        labels, k, _ = cluster_vectors(v, 2, algorithm=algorithm)
        assert k == 2, (algorithm, labels)
        for g in (0, 1):  # each painting in one cluster of its own (hdbscan may leave one crop out: -1)
            kept = labels[(truth == g) & (labels >= 0)]
            assert len(kept) >= 3 and len(set(kept)) == 1, (algorithm, labels)
        assert labels[truth == 0][0] != labels[truth == 1][0]
    labels, k, scores = cluster_vectors(v, "auto", algorithm="agglomerative")
    assert k == 2 and scores[2] == max(scores.values())
    with pytest.raises(ValueError, match="algorithm"):
        cluster_vectors(v, 2, algorithm="dbscan")
    xy = tsne_map(v)
    assert xy.shape == (8, 2) and np.isfinite(xy).all()
    centre = [xy[truth == g].mean(0) for g in (0, 1)]
    spread = max(np.linalg.norm(xy[truth == g] - centre[g], axis=1).max() for g in (0, 1))
    assert np.linalg.norm(centre[0] - centre[1]) > spread  # the two paintings apart on the map


def test_cluster_command_agglomerative_tsne(tmp_path, small_collection):
    folder, db = small_collection
    outdir = tmp_path / "c"
    r = _cli("cluster", db, "--k", 2, "--algorithm", "agglomerative", "--map", "tsne", "-o", outdir)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(outdir / "clusters.csv")))
    assert {r["cluster"] for r in rows} == {"0", "1"} and (outdir / "map.png").is_file()
    for bad in (["--algorithm", "dbscan"], ["--map", "umap"]):
        r = _cli("cluster", db, "--k", 2, *bad, "-o", tmp_path / "x")
        assert r.exit_code == 2 and r.output.strip().startswith("error:") and not (tmp_path / "x").exists()


@pytest.mark.slow
def test_classify_train_fine_tune_reports_both_on_the_same_folds(tmp_path):
    root = _labelled(tmp_path, per_label=3)
    r = _cli("classify", "train", root, "-o", tmp_path / "clf", "--folds", 2, "--fine-tune", "--fine-tune-epochs", 2, "-q")
    assert r.exit_code == 0, r.output
    ft = json.loads((tmp_path / "clf.json").read_text())["fine_tune"]
    assert ft["images"] == 6 and ft["folds"] == 2 and not ft["stopped_early"]
    for key in ("fine_tuned", "linear_probe", "head_only"):
        accs = ft[key]["fold_accuracy"]
        # each fold tests 3 of the 6 images (stratified: 3 per label, 2 folds): a count out of 3
        assert len(accs) == 2 and all(abs(3 * a - round(3 * a)) < 1e-6 for a in accs), (key, accs)
        assert ft[key]["accuracy"] == pytest.approx(np.mean(accs)) and ft[key]["accuracy_std"] == pytest.approx(np.std(accs))
    fine, probe = ft["fine_tuned"], ft["linear_probe"]
    assert (f"fine-tuned conv5_1 + head: 2-fold accuracy {fine['accuracy']:.3f} ± {fine['accuracy_std']:.3f}; "
            f"linear probe on the same folds and statistics {probe['accuracy']:.3f} ± {probe['accuracy_std']:.3f}"
            ) in " ".join(r.output.split()), r.output
    # the card's linear probe is the one reported, and the plain probe's cross-validation is kept beside it
    card = json.loads((tmp_path / "clf.json").read_text())
    assert len(card["cross_validation"]["fold_accuracy"]) == 2
