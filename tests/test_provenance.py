"""Content Credentials (C2PA) and the invisible watermark (issue 28 item 4), on real images.

Needs the provenance extra (c2pa-python, cryptography, invisible-watermark): skipped without it
locally, failed in CI (tests/conftest.py require_extra)."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import require_extra

from atelier.cli import app

runner = CliRunner()
CREDIT = "Vincent van Gogh, The Starry Night, public domain"


@pytest.fixture(autouse=True)
def _extra(tmp_path_factory, monkeypatch):
    require_extra("c2pa")
    require_extra("cryptography")
    require_extra("imwatermark")
    # the local certificate goes to a temporary config folder, never the user's (one per session)
    monkeypatch.setenv("ATELIER_CONFIG_DIR", str(_config(tmp_path_factory)))


_CFG = []


def _config(factory):
    if not _CFG:
        _CFG.append(factory.mktemp("atelier-config"))
    return _CFG[0]


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def _stylize(tmp_path, content, style, name="out.png", *extra):
    out = tmp_path / name
    r = cli("stylize", content, "--style", style, "--method", "adain", "--size", 320, "-o", out, "-q", *extra)
    return out, r


def _tamper_png(src, dst):
    """Change one pixel byte in the PNG's image data, keeping every other chunk (the manifest) as it is."""
    data = src.read_bytes()
    pos, chunks = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        chunks.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    raw = bytearray(zlib.decompress(b"".join(b for t, b in chunks if t == b"IDAT")))
    ihdr = dict(chunks)[b"IHDR"]
    (width,), height = struct.unpack(">I", ihdr[:4]), struct.unpack(">I", ihdr[4:8])[0]
    stride = 1 + width * {2: 3, 6: 4}[ihdr[9]]  # a filter byte, then the row's 8-bit samples
    raw[stride * (height // 2) + 1 + 3 * (width // 2)] ^= 0x40  # one sample of the middle pixel
    out, done = bytearray(data[:8]), False
    for t, b in chunks:
        if t == b"IDAT":
            if done:
                continue
            b, done = zlib.compress(bytes(raw)), True
        out += struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF)
    dst.write_bytes(bytes(out))
    assert [t for t, _ in chunks].count(b"caBX") == 1  # the manifest store is really in the tampered file


def test_sign_verify_manifest_contents(tmp_path, content_path, style_path):
    out, r = _stylize(tmp_path, content_path, style_path, "out.png", "--credentials", "--style-credit", CREDIT)
    assert r.exit_code == 0, r.output

    v = cli("verify", out)
    assert v.exit_code == 0, v.output
    assert "Content Credentials valid" in v.output and "untrusted signer" in v.output
    assert "TAMPERED" not in v.output

    j = cli("verify", out, "--json")
    assert j.exit_code == 0
    rep = json.loads(j.output)
    assert rep["status"] == "valid" and rep["trusted"] is False and rep["tampered"] is False
    assert rep["digital_source_types"] == [
        "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"]
    m = rep["manifest"]
    gen = m["claim_generator_info"][0]
    import atelier

    assert gen["name"] == "atelier" and gen["version"] == atelier.__version__
    params = next(a["data"] for a in m["assertions"] if a["label"] == "atelier.parameters")
    assert params["method"] == "adain" and params["alpha"] == 1.0 and params["style_size"] == 512
    assert params["content"]["file"] == content_path.name and len(params["content"]["sha256"]) == 64
    ings = {i["relationship"]: i for i in m["ingredients"]}
    assert ings["parentOf"]["title"] == content_path.name
    style = ings["componentOf"]
    assert style["title"] == "The Starry Night"
    assert style["metadata"]["artist"] == "Vincent van Gogh" and style["metadata"]["licence"] == "public domain"
    assert style["metadata"]["file"] == style_path.name

    # the local CA given as a trust anchor makes the same file trusted
    from atelier.io.verify import local_ca_path

    t = cli("verify", out, "--trust-anchor", local_ca_path())
    assert t.exit_code == 0 and ": trusted" in t.output

    # atelier info shows the manifest beside the parameters
    i = cli("info", out)
    assert i.exit_code == 0 and "Content Credentials (C2PA)" in i.output and "The Starry Night" in i.output


def test_tampered_pixels_are_reported(tmp_path, content_path, style_path):
    out, r = _stylize(tmp_path, content_path, style_path, "out.png", "--credentials")
    assert r.exit_code == 0, r.output
    bad = tmp_path / "tampered.png"
    _tamper_png(out, bad)
    v = cli("verify", bad)
    assert v.exit_code == 1, v.output
    assert "TAMPERED" in v.output and "dataHash.mismatch" in v.output
    # the untouched file still verifies
    assert cli("verify", out).exit_code == 0


def test_unsigned_file_has_no_credentials(tmp_path, content_path, style_path):
    out, r = _stylize(tmp_path, content_path, style_path)
    assert r.exit_code == 0, r.output
    v = cli("verify", out)
    assert v.exit_code == 3 and "no Content Credentials" in v.output
    assert cli("verify", content_path).exit_code == 3
    assert cli("verify", tmp_path / "missing.png").exit_code == 2


@pytest.mark.parametrize("ext", [".jpg", ".webp"])
def test_other_formats_sign(tmp_path, content_path, style_path, ext):
    out, r = _stylize(tmp_path, content_path, style_path, "out" + ext, "--credentials")
    assert r.exit_code == 0, r.output
    assert cli("verify", out).exit_code == 0


def test_bad_certificate_key_and_credit_exit_2_nothing_written(tmp_path, content_path, style_path):
    from atelier.io.certificates import local_signer_files

    good = local_signer_files()
    key = good.cert_path.parent / "signer-key.pem"
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    cases = [
        (["--c2pa-cert", broken, "--c2pa-key", key], "broken.pem"),
        (["--c2pa-cert", good.cert_path, "--c2pa-key", tmp_path / "nokey.pem"], "nokey.pem: private key file not found"),
        (["--c2pa-cert", good.cert_path, "--c2pa-key", good.cert_path], "not a PEM private key"),
        (["--style-credit", "Van Gogh only"], "ARTIST, TITLE, LICENCE"),
        (["--style-credit", CREDIT, "--style-credit", CREDIT], "one style credit per style image"),
    ]
    for extra, message in cases:
        out, r = _stylize(tmp_path, content_path, style_path, "out.png", "--credentials", *extra)
        assert r.exit_code == 2, (extra, r.output)
        assert message in r.output, (extra, r.output)
        assert len([ln for ln in r.output.splitlines() if ln.strip()]) == 1, r.output
        assert not out.exists() and not list(tmp_path.glob("*.recovered.png")) and not list(tmp_path.glob(".out*"))


def test_self_signed_certificate_is_refused_up_front(tmp_path, content_path, style_path):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    k = ec.generate_private_key(ec.SECP256R1())
    n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "me")])
    now = datetime.datetime.now(datetime.timezone.utc)
    c = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(k.public_key()).serial_number(1)
         .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=9)).sign(k, hashes.SHA256()))
    (tmp_path / "me.pem").write_bytes(c.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "me.key").write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    out, r = _stylize(tmp_path, content_path, style_path, "out.png", "--credentials",
                      "--c2pa-cert", tmp_path / "me.pem", "--c2pa-key", tmp_path / "me.key")
    assert r.exit_code == 2 and "me.pem: c2pa refuses this certificate" in r.output, r.output
    assert not out.exists()


def test_credentials_file_sidecar_and_bmp(tmp_path, content_path, style_path):
    side = tmp_path / "credits.csv"
    side.write_text('artist,title,licence\nKatsushika Hokusai,"The Great Wave, off Kanagawa",public domain\n')
    out, r = _stylize(tmp_path, content_path, style_path, "out.png", "--credentials", "--style-credits", side)
    assert r.exit_code == 0, r.output
    from atelier.io.verify import verify_image

    rep = verify_image(out)
    titles = [i["title"] for i in rep.ingredients if i["relationship"] == "componentOf"]
    assert titles == ["The Great Wave, off Kanagawa"]
    bmp, r = _stylize(tmp_path, content_path, style_path, "out.bmp", "--credentials")
    assert r.exit_code == 2 and "BMP files cannot carry" in r.output and not bmp.exists()


def test_watermark_embed_detect(tmp_path, content_path, style_path):
    out, r = _stylize(tmp_path, content_path, style_path, "wm.png", "--watermark", "--credentials")
    assert r.exit_code == 0, r.output
    v = cli("verify", out)
    assert v.exit_code == 0 and "watermark: present" in v.output, v.output
    # the same photo without the watermark: not detected
    plain, r = _stylize(tmp_path, content_path, style_path, "plain.png")
    v = cli("verify", plain, "--watermark")
    assert v.exit_code == 3 and "watermark: not found" in v.output, v.output
    # the pixels change little (about 31 dB here; the library's dwtDct also swaps the U channel's horizontal and
    # vertical detail bands on the way back, which costs a few dB: see docs/provenance.md)
    a = np.asarray(Image.open(out).convert("RGB"), dtype=np.float64)
    b = np.asarray(Image.open(plain).convert("RGB"), dtype=np.float64)
    psnr = 10 * np.log10(255 ** 2 / ((a - b) ** 2).mean())
    assert psnr > 28, psnr


def test_watermark_keeps_alpha_and_sign_image_api(tmp_path, content2_path):
    import atelier
    from atelier.io.images import read_alpha, save_image
    from atelier.io.provenance import Credentials

    photo, painting = content2_path, atelier.demo_images()[1]
    # (DWT-DCT does not take on every picture: on the bundled cat at this size only 40 of 48 bits come back even
    # without any attack; docs/results/watermark.json counts how often on 20 outputs)
    rgb = Image.open(content2_path).convert("RGB").resize((384, 256))
    alpha = np.full((256, 384), 255, np.uint8)
    alpha[:, :96] = 0
    out = tmp_path / "logo.png"
    save_image(rgb, out, {"method": "test"}, alpha=alpha, credentials=Credentials(watermark=True))
    assert np.array_equal(read_alpha(out), alpha)
    signed = atelier.sign_image(out, tmp_path / "signed.png", content=photo, styles=[painting],
                                style_credits=["Vincent van Gogh, The Starry Night, public domain"])
    rep = atelier.verify_image(signed, watermark=True)
    assert rep.ok and not rep.trusted and rep.watermark.present
    assert rep.parameters["method"] == "test" and np.array_equal(read_alpha(signed), alpha)


def test_apply_signs_every_output(tmp_path, content_path, content2_path):
    out = tmp_path / "applied"
    r = cli("apply", "starry_night", content_path, content2_path, "-o", out, "--size", 256, "-q", "--credentials",
            "--style-credit", CREDIT)
    assert r.exit_code == 0, r.output
    from atelier.io.verify import verify_image

    for src in (content_path, content2_path):
        rep = verify_image(out / src.name)
        assert rep.ok, rep.lines()
        parents = [i["title"] for i in rep.ingredients if i["relationship"] == "parentOf"]
        assert parents == [src.name]
        assert rep.parameters["model"] == "starry_night"


def test_studio_download_signed(tmp_path, content_path, style_path):
    require_extra("fastapi")
    require_extra("python_multipart")
    from fastapi.testclient import TestClient

    from atelier.io.verify import verify_image
    from atelier.studio.app import create_app

    app = create_app(tmp_path / "data")
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            ids = []
            for path, kind in ((content_path, "content"), (style_path, "style")):
                r = client.post("/api/images", files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
                                data={"kind": kind})
                assert r.status_code == 200, r.text
                ids.append(r.json()["id"])
            r = client.post("/api/jobs", json={"method": "adain", "content": ids[0], "styles": [ids[1]], "size": 256})
            assert r.status_code == 200, r.text
            job = r.json()["id"]
            assert app.state.queue.wait(job, 120)["status"] == "done"
            plain = client.get(f"/api/jobs/{job}/result?download=true")
            signed = client.get(f"/api/jobs/{job}/result?download=true&credentials=true")
            assert plain.status_code == 200 and signed.status_code == 200, signed.text
            (tmp_path / "plain.png").write_bytes(plain.content)
            (tmp_path / "signed.png").write_bytes(signed.content)
            assert verify_image(tmp_path / "plain.png").status == "none"
            rep = verify_image(tmp_path / "signed.png")
            assert rep.ok and rep.parameters["studio_job"] == job
            assert [i["relationship"] for i in rep.ingredients] == ["parentOf", "componentOf"]
            # the signed copy was made for the response only
            assert not list((tmp_path / "data").rglob(".signed-*"))
    finally:
        app.state.queue.stop()


def test_signing_failure_leaves_no_partial_file(tmp_path, content_path, monkeypatch):
    """A failure inside the signature (here: c2pa raising midway) keeps save_image's atomic write: no new file, no
    temporary file, and a file already there is left as it was."""
    from atelier.core.errors import InputError
    from atelier.io import images as img
    from atelier.io.provenance import make_credentials

    creds = make_credentials()
    real = type(creds.signer).c2pa_signer

    def broken(self):
        s = real(self)
        s.close()  # a closed signer: Builder.sign fails inside c2pa
        return s

    image = img.load_image(content_path, size=256)
    out = tmp_path / "out.png"
    monkeypatch.setattr(type(creds.signer), "c2pa_signer", broken)
    with pytest.raises(InputError, match="out.png: signing the Content Credentials failed"):
        img.save_image(image, out, {"method": "x"}, credentials=creds)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    out.write_bytes(b"old")
    with pytest.raises(InputError):
        img.save_image(image, out, {"method": "x"}, credentials=creds)
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.png"]
