"""Tests for atelier.image: reading odd and broken files, writing, colour helpers.

Every odd file is built in tmp_path from a real photograph (scikit-image's
sample images or the shared data set), so the decoders see realistic data.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from atelier.io import images as I
from atelier.imaging import color
from atelier.core.errors import AtelierError, InputError

from conftest import data_file as shared


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    return skdata.coffee()  # (400, 600, 3) uint8


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()  # (512, 512, 3) uint8


@pytest.fixture(scope="module")
def chelsea() -> np.ndarray:
    return skdata.chelsea()  # (300, 451, 3) uint8


def arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


def raises_input_error(path: Path, *words: str, **kw) -> InputError:
    with pytest.raises(InputError) as ei:
        I.open_image(path, **kw)
    msg = str(ei.value)
    assert path.name in msg, msg
    assert "\n" not in msg
    for w in words:
        assert w.lower() in msg.lower(), msg
    return ei.value


def reopen(path: Path) -> Image.Image:
    """Pillow's own reading of a file (loaded, file closed)."""
    with Image.open(path) as im:
        im.load()
        return im.copy()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def raw_png(width: int, height: int, bit_depth: int, color_type: int, rows: bytes) -> bytes:
    """A minimal PNG, written by hand (Pillow cannot write 16-bit RGB or fake headers)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(rows))
            + png_chunk(b"IEND", b""))


# --------------------------------------------------------------------------- errors


def test_input_error_format():
    e = InputError("file not found; check the path", Path("/x/photo.jpg"))
    assert str(e) == "/x/photo.jpg: file not found; check the path"
    assert e.path == Path("/x/photo.jpg")
    assert isinstance(e, ValueError) and isinstance(e, AtelierError)
    assert str(InputError("bad value")) == "bad value"
    assert str(pickle.loads(pickle.dumps(e))) == str(e)


# --------------------------------------------------------------------------- good inputs


def test_open_real_jpeg():
    p = shared("content/000000000030.jpg")
    img = I.open_image(p)
    ref = reopen(p)
    assert img.mode == "RGB" and img.size == ref.size
    np.testing.assert_array_equal(arr(img), arr(ref.convert("RGB")))


def test_load_image_shapes_and_resize():
    p = shared("styles/starry_night.jpg")
    full = I.load_image(p)
    assert full.dtype == torch.float32 and full.dim() == 4 and full.shape[:2] == (1, 3)
    assert 0.0 <= float(full.min()) and float(full.max()) <= 1.0
    h, w = full.shape[-2:]
    t = I.load_image(str(p), size=128)
    assert max(t.shape[-2:]) == 128
    assert abs(t.shape[-2] / t.shape[-1] - h / w) < 0.02
    # a downscaled image has about the same mean colour
    assert torch.allclose(t.mean(dim=(2, 3)), full.mean(dim=(2, 3)), atol=0.01)


def test_load_image_from_arrays_and_tensors(astronaut):
    t = I.load_image(astronaut)
    assert t.shape == (1, 3, 512, 512)
    np.testing.assert_allclose(t[0].permute(1, 2, 0).numpy() * 255, astronaut, atol=1e-3)
    tf = I.load_image(astronaut.astype(np.float32) / 255)
    assert torch.allclose(tf, t, atol=1e-6)
    gray = I.load_image(astronaut[..., 0])
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 0], t[:, 0])
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    assert torch.equal(I.load_image(rgba), t)
    # tensors pass through (as (1, 3, H, W) float32) and can be resized
    assert torch.equal(I.load_image(t[0]), t)
    small = I.load_image(t.double(), size=64)
    assert small.shape == (1, 3, 64, 64) and small.dtype == torch.float32
    with pytest.raises(InputError):
        I.load_image(torch.rand(2, 3, 32, 32))
    with pytest.raises(InputError):
        I.load_image(astronaut.astype(np.float32))  # 0..255 floats: out of [0, 1]
    with pytest.raises(InputError):
        I.load_image(np.zeros((32, 32, 2), np.uint8))
    with pytest.raises(InputError):
        I.load_image(astronaut, size=0)


def test_grayscale_png(tmp_path, coffee):
    gray = Image.fromarray(coffee).convert("L")
    p = tmp_path / "gray.png"
    gray.save(p)
    img = I.open_image(p)
    a = arr(img)
    assert img.mode == "RGB" and img.size == (600, 400)
    for c in range(3):
        np.testing.assert_array_equal(a[..., c], arr(gray))


def test_float_grayscale_tiff(tmp_path):
    cam = skdata.camera()
    p = tmp_path / "float.tif"
    Image.fromarray(cam.astype(np.float32) / 255.0, mode="F").save(p)
    a = arr(I.open_image(p))
    assert np.abs(a[..., 0] - cam).max() <= 1 and np.array_equal(a[..., 0], a[..., 2])


def test_rgba_transparent_region_becomes_white(tmp_path, chelsea):
    alpha = np.full(chelsea.shape[:2], 255, np.uint8)
    alpha[:100, :200] = 0  # fully transparent
    alpha[200:, 300:] = 128  # half transparent
    p = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([chelsea, alpha]), "RGBA").save(p)
    a = arr(I.open_image(p))
    assert (a[:100, :200] == 255).all()
    np.testing.assert_array_equal(a[100:200], chelsea[100:200])
    half = (chelsea[200:, 300:].astype(float) * 128 + 255 * 127) / 255
    assert np.abs(a[200:, 300:] - half).max() <= 1


def test_la_png(tmp_path, chelsea):
    g = np.asarray(Image.fromarray(chelsea).convert("L"))
    alpha = np.full(g.shape, 255, np.uint8)
    alpha[:, :50] = 0
    p = tmp_path / "la.png"
    Image.fromarray(np.dstack([g, alpha]), "LA").save(p)
    a = arr(I.open_image(p))
    assert (a[:, :50] == 255).all()
    np.testing.assert_array_equal(a[:, 50:, 1], g[:, 50:])


def test_palette_png(tmp_path, astronaut):
    pal = Image.fromarray(astronaut).convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    p = tmp_path / "pal.png"
    pal.save(p)
    a = arr(I.open_image(p))
    np.testing.assert_array_equal(a, arr(pal.convert("RGB")))
    assert np.abs(a - astronaut).mean() < 6


def test_palette_png_with_transparency(tmp_path, astronaut):
    pal = Image.fromarray(astronaut).convert("P", palette=Image.Palette.ADAPTIVE, colors=255)
    idx = np.array(pal)
    assert idx.max() < 255
    idx[:64, :] = 255  # an unused (black) entry, made transparent
    im = Image.fromarray(idx, "P")
    palette = pal.getpalette()[: 255 * 3]
    im.putpalette(palette + [0] * (768 - len(palette)))
    p = tmp_path / "pal_t.png"
    im.save(p, transparency=255)
    assert "transparency" in reopen(p).info  # a tRNS chunk
    a = arr(I.open_image(p))
    assert (a[:64] == 255).all()
    np.testing.assert_array_equal(a[64:], arr(pal.convert("RGB"))[64:])


def test_cmyk_jpeg(tmp_path, coffee):
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(coffee).convert("CMYK").save(p, quality=95)
    assert reopen(p).mode == "CMYK"
    img = I.open_image(p)
    assert img.mode == "RGB"
    assert np.abs(arr(img) - coffee).mean() < 3


def test_16bit_gray_png(tmp_path, coffee):
    g8 = np.asarray(Image.fromarray(coffee).convert("L"))
    p = tmp_path / "gray16.png"
    Image.fromarray(g8.astype(np.uint16) * 257).save(p)
    assert reopen(p).mode.startswith("I")
    t = I.load_image(p)
    np.testing.assert_allclose(t[0, 0].numpy(), g8 / 255.0, atol=1 / 255 + 1e-6)
    assert t.max() > 0.9  # scaled, not clipped to white or left dark


def test_16bit_rgb_png(tmp_path, chelsea):
    h, w, _ = chelsea.shape
    rows = b"".join(b"\x00" + (chelsea[y].astype(">u2") * 257).tobytes() for y in range(h))
    p = tmp_path / "rgb16.png"
    p.write_bytes(raw_png(w, h, 16, 2, rows))
    t = I.load_image(p)
    assert t.shape == (1, 3, h, w)
    np.testing.assert_allclose(t[0].permute(1, 2, 0).numpy(), chelsea / 255.0, atol=1 / 255 + 1e-6)


@pytest.mark.parametrize("orientation,k", [(6, -1), (8, 1)])
def test_exif_orientation(tmp_path, chelsea, orientation, k):
    p = tmp_path / f"rot{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(chelsea).save(p, quality=95, exif=exif.tobytes())
    stored = np.asarray(reopen(p).convert("RGB"))  # pixels as stored, not rotated
    img = I.open_image(p)
    assert img.size == (300, 451)  # width and height swapped: upright
    np.testing.assert_array_equal(arr(img), np.rot90(stored, k=k))  # 6: 90 deg clockwise
    assert np.abs(arr(img) - np.rot90(chelsea, k=k)).mean() < 3


def test_animated_gif_first_frame(tmp_path, chelsea):
    frames = [Image.fromarray(chelsea), Image.fromarray(255 - chelsea)]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    a = arr(I.open_image(p))
    assert np.abs(a - chelsea).mean() < 12
    assert np.abs(a - (255 - chelsea)).mean() > 50


def test_pil_input_and_roundtrip(astronaut):
    pil = Image.fromarray(astronaut)
    t = I.pil_to_tensor(pil)
    assert t.shape == (1, 3, 512, 512) and t.dtype == torch.float32
    back = I.tensor_to_pil(t)
    np.testing.assert_array_equal(np.asarray(back), astronaut)
    np.testing.assert_array_equal(np.asarray(I.tensor_to_pil(t[0] * 2 - 0.5)).min(), 0)
    assert I.open_image(pil.convert("LA")).mode == "RGB"
    with pytest.raises(ValueError):
        I.tensor_to_pil(torch.rand(2, 3, 8, 8))


# --------------------------------------------------------------------------- bad inputs


def test_missing_directory_empty(tmp_path):
    raises_input_error(tmp_path / "nope.jpg", "not found")
    d = tmp_path / "folder.png"
    d.mkdir()
    raises_input_error(d, "directory")
    e = tmp_path / "empty.png"
    e.touch()
    raises_input_error(e, "empty")


@pytest.mark.parametrize("fmt,ext", [("JPEG", ".jpg"), ("PNG", ".png")])
def test_truncated(tmp_path, coffee, fmt, ext):
    buf = io.BytesIO()
    Image.fromarray(coffee).save(buf, fmt)
    p = tmp_path / f"half{ext}"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    raises_input_error(p, "truncated")


def test_truncated_real_jpeg(tmp_path):
    src = shared("content/000000000030.jpg").read_bytes()
    p = tmp_path / "cut.jpg"
    p.write_bytes(src[: len(src) // 3])
    raises_input_error(p, "truncated")
    q = tmp_path / "stub.jpg"
    q.write_bytes(src[:20])  # the header itself is cut
    raises_input_error(q, "truncated")


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("these are not pixels\n" * 20)
    raises_input_error(p, "not a recognized image file", "PNG", "JPEG")


@pytest.mark.parametrize(
    "name,content,words",
    [
        ("logo.svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', ("SVG", "not supported")),
        ("photo.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", ("HEIC", "not supported")),
        ("photo.heif", b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", ("HEIC", "not supported")),
        ("scan.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", ("PDF", "not supported")),
        ("art.psd", b"8BPS\x00\x01" + bytes(40), ("PSD", "not supported")),
        ("raw.cr2", b"II*\x00\x10\x00\x00\x00CR\x02\x00" + bytes(40), ("raw", "not supported")),
        ("raw.nef", b"MM\x00*" + bytes(40), ("raw", "not supported")),
        ("raw.dng", b"II*\x00" + bytes(40), ("raw", "not supported")),
        # by content, whatever the extension says
        ("disguised.png", b"%PDF-1.7\n" + bytes(40), ("PDF", "not supported")),
        ("drawing.jpg", b"<svg width='10' height='10'></svg>", ("SVG", "not supported")),
        ("iphone.jpg", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(40), ("HEIC",)),
    ],
)
def test_unsupported_formats(tmp_path, name, content, words):
    p = tmp_path / name
    p.write_bytes(content)
    e = raises_input_error(p, *words)
    assert "convert it to PNG or JPEG" in str(e)


def test_real_image_with_raw_extension_is_rejected(tmp_path):
    # DNG/NEF are TIFF containers: Pillow would show a thumbnail, so reject by name.
    p = tmp_path / "camera.dng"
    Image.fromarray(skdata.chelsea()).save(p, format="TIFF")
    raises_input_error(p, "raw")


def test_decompression_bomb_header_rejected_before_decoding(tmp_path):
    # 20000 x 20000 8-bit gray (400 MP, 400 MB decoded) in 100 bytes on disk.
    p = tmp_path / "bomb.png"
    p.write_bytes(raw_png(20000, 20000, 8, 0, b"\x00" * 100))
    e = raises_input_error(p, "20000x20000", "--max-pixels", "ATELIER_MAX_PIXELS", "100,000,000")
    assert "400.0 megapixels" in str(e)


def test_our_limit_rules_not_pillows(tmp_path, monkeypatch):
    # With a tiny Pillow limit a normal photo still opens: our (default) limit decides...
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    photo = shared("content/000000000030.jpg")
    assert I.open_image(photo).size == (640, 428)
    assert Image.MAX_IMAGE_PIXELS == 1000  # ...and Pillow's setting is restored afterwards
    # Above Pillow's hard error threshold (2 x 89 MP) Image.open itself would raise
    # DecompressionBombError; we still read the header and give our own message.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89_478_485)
    q = tmp_path / "tall.png"
    q.write_bytes(raw_png(16, 12_000_000, 8, 0, b"\x00" * 100))  # 192 MP, 192 MB if decoded
    err = raises_input_error(q, "16x12000000", "--max-pixels")  # our default limit
    assert "DecompressionBomb" not in str(err)


def test_low_max_pixels_rejects_photo(monkeypatch):
    p = shared("content/000000000030.jpg")
    raises_input_error(p, "640x428", "above the limit of 1,000 pixels", max_pixels=1000)
    with pytest.raises(InputError, match="640x428"):
        I.load_image(p, max_pixels=1000)
    monkeypatch.setenv("ATELIER_MAX_PIXELS", "1000")
    raises_input_error(p, "640x428")
    assert I.open_image(p, max_pixels=10**9).size == (640, 428)  # explicit argument wins


def test_max_pixels_from_env(monkeypatch):
    monkeypatch.delenv("ATELIER_MAX_PIXELS", raising=False)
    assert I.max_pixels_from_env() == I.DEFAULT_MAX_PIXELS == 100_000_000
    monkeypatch.setenv("ATELIER_MAX_PIXELS", " 200000000 ")
    assert I.max_pixels_from_env() == 200_000_000
    for bad in ("lots", "-5", "0", "1.5e8"):
        monkeypatch.setenv("ATELIER_MAX_PIXELS", bad)
        with pytest.raises(InputError, match="ATELIER_MAX_PIXELS"):
            I.max_pixels_from_env()


def test_too_small(tmp_path, chelsea):
    p = tmp_path / "dot.png"
    Image.fromarray(chelsea[:1, :1]).save(p)
    e = raises_input_error(p, "too small (1x1)", "at least 16 px per side")
    q = tmp_path / "strip.png"
    Image.fromarray(chelsea[:15, :200]).save(q)
    raises_input_error(q, "200x15")
    ok = tmp_path / "ok.png"
    Image.fromarray(chelsea[:16, :16]).save(ok)
    assert I.open_image(ok).size == (16, 16)
    assert e.path == p
    with pytest.raises(InputError, match="too small"):
        I.open_image(chelsea[:8, :8])


# --------------------------------------------------------------------------- writing


def test_save_and_read_metadata_png(tmp_path, astronaut):
    t = I.load_image(astronaut)
    meta = {"content": "a.jpg", "iterations": 300, "style_weight": 1e6, "layers": ["conv1_1"],
            "path": tmp_path}  # not JSON: stored as str
    out = I.save_image(t, tmp_path / "out.png", meta)
    assert out == (tmp_path / "out.png").resolve()
    assert sorted(os.listdir(tmp_path)) == ["out.png"]  # no temp file left behind
    np.testing.assert_array_equal(np.asarray(reopen(out)), astronaut)  # lossless
    got = I.read_metadata(out)
    assert got == {**meta, "path": str(tmp_path)}
    umask = os.umask(0)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == (0o666 & ~umask)


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".webp"])
def test_save_metadata_exif(tmp_path, chelsea, ext):
    meta = {"seed": 0, "method": "gatys"}
    out = I.save_image(Image.fromarray(chelsea), tmp_path / f"out{ext}", meta)
    assert I.read_metadata(out) == meta
    assert np.abs(arr(I.open_image(out)) - chelsea).mean() < 3
    assert sorted(os.listdir(tmp_path)) == [out.name]


@pytest.mark.parametrize("ext", [".tif", ".bmp", ".PNG"])
def test_save_other_formats(tmp_path, chelsea, ext):
    out = I.save_image(torch.from_numpy(chelsea).permute(2, 0, 1).float() / 255, tmp_path / f"o{ext}", {"a": 1})
    np.testing.assert_array_equal(np.asarray(reopen(out).convert("RGB")), chelsea)
    assert I.read_metadata(out) == ({"a": 1} if ext == ".PNG" else None)


def test_read_metadata_absent_and_errors(tmp_path):
    assert I.read_metadata(shared("content/000000000030.jpg")) is None
    with pytest.raises(InputError, match="missing.png"):
        I.read_metadata(tmp_path / "missing.png")
    txt = tmp_path / "t.png"
    txt.write_text("hello")
    with pytest.raises(InputError, match="not a recognized image"):
        I.read_metadata(txt)


def test_save_is_atomic_on_failure(tmp_path, chelsea, monkeypatch):
    target = tmp_path / "result.png"
    target.write_bytes(b"previous result")

    def boom(self, fp, format=None, **params):
        fp.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(InputError, match="No space left"):
        I.save_image(Image.fromarray(chelsea), target)
    assert sorted(os.listdir(tmp_path)) == ["result.png"]
    assert target.read_bytes() == b"previous result"

    monkeypatch.setattr(Image.Image, "save", lambda self, fp, format=None, **kw: (_ for _ in ()).throw(KeyError("x")))
    with pytest.raises(KeyError):
        I.save_image(Image.fromarray(chelsea), target)
    assert sorted(os.listdir(tmp_path)) == ["result.png"]


def test_check_output_path(tmp_path):
    assert I.check_output_path(tmp_path / "a.png") == (tmp_path / "a.png").resolve()
    with pytest.raises(InputError, match="does not exist; create it first") as ei:
        I.check_output_path(tmp_path / "no" / "such" / "out.png")
    assert "out.png" in str(ei.value)
    d = tmp_path / "d.png"
    d.mkdir()
    with pytest.raises(InputError, match="directory"):
        I.check_output_path(d)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        I.check_output_path(f / "out.png")
    for bad in ("out.gif", "out.svg", "out", "out.heic"):
        with pytest.raises(InputError, match=r"unsupported output format.*\.png \(recommended\)"):
            I.check_output_path(tmp_path / bad)
    with pytest.raises(InputError):
        I.save_image(torch.rand(1, 3, 16, 16), tmp_path / "out.gif")
    assert not (tmp_path / "out.gif").exists()


def test_check_output_path_unwritable(tmp_path):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root can write to read-only directories")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(InputError, match="not writable"):
            I.check_output_path(ro / "out.png")
    finally:
        ro.chmod(0o755)


def test_check_output_path_unwritable_simulated(tmp_path, monkeypatch):
    # Works as root too: the permission check itself is what is tested.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == tmp_path else real_access(p, mode))
    with pytest.raises(InputError, match="not writable"):
        I.check_output_path(tmp_path / "out.png")


# --------------------------------------------------------------------------- resizing


def test_resize_helpers(astronaut):
    t = I.load_image(astronaut)[:, :, :, :384]  # 512 x 384
    r = I.resize_longest(t, 100)
    assert r.shape == (1, 3, 100, 75)
    assert 0 <= float(r.min()) and float(r.max()) <= 1
    assert torch.allclose(r.mean(dim=(2, 3)), t.mean(dim=(2, 3)), atol=0.01)
    assert I.resize_to(t, 31, 17).shape == (1, 3, 31, 17)
    assert I.resize_longest(torch.rand(2, 3, 10, 1000), 100).shape == (2, 3, 1, 100)
    same = I.resize_to(t, 512, 384)
    assert torch.equal(same, t) and same is not t


# --------------------------------------------------------------------------- colour


def test_ycbcr_round_trip_and_reference(astronaut):
    x = I.load_image(astronaut)
    ycc = color.rgb_to_ycbcr(x)
    assert (color.ycbcr_to_rgb(ycc) - x).abs().max() < 1e-5
    # Agrees with Pillow's JPEG-style (full-range BT.601, integer arithmetic) conversion.
    ref = Image.fromarray(astronaut).convert("YCbCr")  # Pillow: JPEG full-range BT.601
    np.testing.assert_allclose(ycc[0].permute(1, 2, 0).numpy() * 255, np.asarray(ref, float), atol=1.5)
    y = color.luminance(x)
    assert y.shape == (1, 1, 512, 512) and torch.allclose(y, ycc[:, :1], atol=1e-6)
    gray = torch.full((1, 3, 4, 4), 0.3)
    assert torch.allclose(color.rgb_to_ycbcr(gray)[:, 1:], torch.tensor(0.5), atol=1e-6)


def test_combine_luminance_chroma(astronaut, coffee):
    content = I.load_image(coffee)  # 400 x 600
    styl = I.load_image(astronaut)  # another image, other size
    y = color.luminance(I.resize_to(styl, 400, 600))
    out = color.combine_luminance_chroma(y, content)
    assert out.shape == (1, 3, 400, 600) and 0 <= float(out.min()) and float(out.max()) <= 1
    yo, yc = color.rgb_to_ycbcr(out), color.rgb_to_ycbcr(content)
    inside = ((color.ycbcr_to_rgb(torch.cat([y, yc[:, 1:]], 1)) - 0.5).abs() <= 0.5).all(1, keepdim=True)
    assert inside.float().mean() > 0.5
    m = inside.expand(-1, 3, -1, -1)
    assert (yo - torch.cat([y, yc[:, 1:]], 1))[m].abs().max() < 1e-5  # exact where in gamut
    # an RGB y and a chroma image of another size work too
    out2 = color.combine_luminance_chroma(I.resize_to(styl, 400, 600), I.resize_to(content, 200, 300))
    assert out2.shape == (1, 3, 400, 600)
    chroma2 = color.rgb_to_ycbcr(out2)[:, 1:]
    ys = color.rgb_to_ycbcr(I.resize_to(styl, 400, 600))
    assert (chroma2 - yc[:, 1:]).abs().mean() < 0.3 * (ys[:, 1:] - yc[:, 1:]).abs().mean()
    assert (color.rgb_to_ycbcr(out2)[:, :1] - ys[:, :1]).abs().mean() < 0.02


def test_match_luminance(astronaut, coffee):
    s = color.luminance(I.load_image(astronaut))
    t = color.luminance(I.load_image(coffee))
    m = color.match_luminance(s, t)
    assert m.shape == s.shape
    assert abs(float(m.mean()) - float(t.mean())) < 1e-5
    assert abs(float(m.std(unbiased=False)) - float(t.std(unbiased=False))) < 1e-5
    assert np.corrcoef(m.flatten().numpy(), s.flatten().numpy())[0, 1] > 0.9999  # affine
    flat = color.match_luminance(torch.full((1, 1, 8, 8), 0.2), t)
    assert torch.allclose(flat, t.mean().expand_as(flat), atol=1e-6)


def test_match_color_histogram(astronaut, coffee):
    s = I.load_image(astronaut)
    r = I.load_image(coffee)
    out = color.match_color_histogram(s, r)
    assert out.shape == s.shape and out.dtype == torch.float32
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    assert torch.allclose(out.mean(dim=(2, 3)), r.mean(dim=(2, 3)), atol=0.01)
    assert not torch.allclose(s.mean(dim=(2, 3)), r.mean(dim=(2, 3)), atol=0.05)
    # structure comes from the source: each channel is a monotonic remapping of it
    for c in range(3):
        src, got = s[0, c].flatten().numpy(), out[0, c].flatten().numpy()
        order = np.argsort(src, kind="stable")
        assert (np.diff(got[order]) >= -1e-6).all()
    # a batch against one reference
    two = color.match_color_histogram(torch.cat([s, s.flip(-1)]), r)
    assert two.shape == (2, 3, 512, 512) and torch.allclose(two[1], out[0].flip(-1), atol=1e-6)
