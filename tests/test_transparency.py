"""A transparent photo or logo keeps its alpha (issue 28, item 2): bit-identical at the same size in
PNG/WebP, composited over --background in formats without alpha."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from atelier.cli import app
from conftest import data_file


@pytest.fixture
def rgba(tmp_path):
    im = Image.open(data_file("content/000000000030.jpg")).convert("RGBA").resize((96, 64))
    a = np.zeros((64, 96), np.uint8)
    a[10:50, 20:80] = 255
    a[30:40, :] = 128  # half transparent
    im.putalpha(Image.fromarray(a))
    im.save(tmp_path / "logo.png")
    return tmp_path / "logo.png", a


@pytest.mark.parametrize("method", ["starry_night", "gatys"])
def test_alpha_is_kept_bit_for_bit_and_composited_for_jpeg(tmp_path, rgba, method, style_path):
    src, a = rgba
    extra = ["-s", str(style_path), "-n", "2", "--precision", "fp32"] if method == "gatys" else []
    for out in ("o.png", "o.webp"):
        r = CliRunner().invoke(app, ["stylize", str(src), "--method", method, "-o", str(tmp_path / out), "-q", *extra])
        assert r.exit_code == 0, r.output
        got = np.asarray(Image.open(tmp_path / out))
        assert got.shape == (64, 96, 4)
        if out.endswith(".png"):
            assert np.array_equal(got[..., 3], a)
        else:  # lossy WebP keeps the alpha plane too (lossless alpha by default)
            assert np.abs(got[..., 3].astype(int) - a).max() <= 1
    r = CliRunner().invoke(app, ["stylize", str(src), "--method", method, "-o", str(tmp_path / "o.jpg"), "-q",
                                 "--background", "black", *extra])
    assert r.exit_code == 0, r.output
    jpg = np.asarray(Image.open(tmp_path / "o.jpg"))
    assert jpg.shape == (64, 96, 3) and jpg[:5, :5].max() < 12  # fully transparent corner: black


def test_bad_background_is_one_line(tmp_path, rgba):
    r = CliRunner().invoke(app, ["stylize", str(rgba[0]), "--method", "starry_night", "-o", str(tmp_path / "x.jpg"),
                                 "--background", "purple"])
    assert r.exit_code == 2 and "--background" in r.output and not (tmp_path / "x.jpg").exists()
