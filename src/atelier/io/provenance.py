"""Content Credentials (C2PA) on atelier's outputs (issue 28), through ``c2pa-python``
(``pip install 'atelier[provenance]'``; atelier itself imports without it).

What a signed output carries (one C2PA manifest, embedded in the PNG/JPEG/WebP/TIFF file and
bound to its bytes by a SHA-256 hash, signed with ES256 by default):

* ``claim_generator_info``: atelier and its version;
* a ``c2pa.actions`` assertion: ``c2pa.opened`` of the content photo (the *parent* ingredient)
  and ``c2pa.edited`` by atelier, with ``digitalSourceType``
  ``http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia``
  (:data:`DIGITAL_SOURCE_TYPE`, IPTC "edited using generative AI": the user's photo, changed
  as a whole by a trained model; ``trainedAlgorithmicMedia`` would claim an image made from
  nothing, with no photo behind it) and the method's parameters;
* an ``atelier.parameters`` assertion: the same dict atelier stores as metadata (method,
  parameters, inputs by name and sha256);
* the style images as ``componentOf`` ingredients (with a thumbnail), titled, and with their
  artist and licence when given (:class:`StyleCredit`, ``--style-credit`` or a sidecar file).

:func:`verify_image` reads a file back and says: no credentials, valid (signed by a trusted or
an *untrusted* signer: a locally made certificate is untrusted, which is not an error), or
invalid (the pixels changed after signing: tampering; or a broken signature).
"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
from dataclasses import dataclass, field

from ..core.errors import InputError
from .certificates import SignerFiles, load_signer_files, local_signer_dir, local_signer_files

__all__ = ["DIGITAL_SOURCE_TYPE", "MIME_TYPES", "Credentials", "StyleCredit", "VerifyReport", "load_signer",
           "local_ca_path", "make_credentials", "parse_style_credit", "read_credits_file", "require_c2pa", "sign_image",
           "verify_image"]

#: IPTC digital source type of a style transfer of the user's photo (see the module docstring).
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
#: Pillow formats that can carry a manifest, and their MIME types (BMP cannot).
MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff"}
#: Label of the assertion holding atelier's own metadata dict.
PARAMETERS_LABEL = "atelier.parameters"
_INSTALL = "pip install 'atelier[provenance]'"


def require_c2pa():
    """The ``c2pa`` module, or an ImportError whose message says what to install."""
    try:
        import c2pa
    except ImportError:
        raise ImportError(f"Content Credentials need the c2pa-python package: {_INSTALL}") from None
    return c2pa


# --------------------------------------------------------------------------- style credits


@dataclass(frozen=True)
class StyleCredit:
    """Who made a style image and under which licence: ``artist``, ``title``, ``licence`` (strings)."""

    artist: str
    title: str
    licence: str

    def as_dict(self) -> dict:
        return {"artist": self.artist, "title": self.title, "licence": self.licence}


def parse_style_credit(text: str) -> StyleCredit:
    """``"ARTIST, TITLE, LICENCE"`` (three comma-separated, non-empty fields), e.g.
    ``"Van Gogh, The Starry Night, public domain"``. A title with a comma needs a sidecar file
    (:func:`read_credits_file`).

    Raises:
        InputError: not three non-empty fields.
    """
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 3 or not all(parts):
        raise InputError(f"--style-credit must be 'ARTIST, TITLE, LICENCE' (three comma-separated fields, e.g. "
                         f"'Van Gogh, The Starry Night, public domain'), got {text!r}; for a title with a comma use "
                         "--style-credits FILE.json")
    return StyleCredit(*parts)


def read_credits_file(path: os.PathLike | str) -> list[StyleCredit]:
    """Style credits from a sidecar file, one per style image in order.

    * ``.json``: a list of objects ``{"artist": ..., "title": ..., "licence": ...}`` (or an
      object ``{"styles": [...]}``);
    * ``.csv``: a header row ``artist,title,licence`` then one row per style (quoted fields may
      hold commas).

    Raises:
        InputError: naming the file: missing, unreadable, another extension, or an entry without
            the three fields.
    """
    p = pathlib.Path(os.fspath(path)).expanduser()
    if not p.is_file():
        raise InputError("style credits file not found", p)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the style credits file ({e})", p) from None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise InputError(f"is not valid JSON ({e})", p) from None
        rows = data.get("styles") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise InputError("must hold a list of {\"artist\", \"title\", \"licence\"} objects", p)
    elif p.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        raise InputError("style credits must be a .json or .csv file", p)
    out = []
    for i, row in enumerate(rows, 1):
        fields = [str(row.get(k, "")).strip() if isinstance(row, dict) else "" for k in ("artist", "title", "licence")]
        if not all(fields):
            raise InputError(f"entry {i} needs non-empty artist, title and licence, got {row!r}", p)
        out.append(StyleCredit(*fields))
    if not out:
        raise InputError("holds no style credits", p)
    return out


# --------------------------------------------------------------------------- signing


@dataclass
class _Signer:
    files: SignerFiles

    def c2pa_signer(self):
        c2pa = require_c2pa()
        return c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg=self.files.alg, sign_cert=self.files.chain,
                                                         private_key=self.files.key, ta_url=None))


def _context():
    c2pa = require_c2pa()
    settings = c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": True, "long_edge": 256,
                                                                  "quality": "low"}}})
    return c2pa.Context(settings)


def load_signer(cert: os.PathLike | str | None = None, key: os.PathLike | str | None = None) -> _Signer:
    """The signer: the user's ``cert`` (PEM chain, leaf first) and ``key`` (PEM), or, with
    neither, the local certificate made on first use (:mod:`atelier.io.certificates`). Checked
    up front with a test signature of a tiny image, so that a certificate c2pa refuses fails
    before a long job, not after it.

    Raises:
        InputError: only one of the two given; a file missing, unreadable or not PEM; a key that
            does not match; a certificate that c2pa refuses (self-signed, no extended key usage...).
        ImportError: c2pa-python or cryptography is not installed.
    """
    require_c2pa()
    if (cert is None) != (key is None):
        raise InputError("give both --c2pa-cert and --c2pa-key (or neither, for the local certificate)")
    files = local_signer_files() if cert is None else load_signer_files(cert, key)
    signer = _Signer(files)
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (128, 128, 128)).save(buf, "PNG")
    try:
        test = {"claim_generator_info": [_generator()], "title": "test", "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created",
                                                            "digitalSourceType": DIGITAL_SOURCE_TYPE}]}}]}
        _sign(signer, buf.getvalue(), "PNG", test, [])
    except Exception as e:  # c2pa.C2paError: the library's own words, after ours
        msg = " ".join(str(e).split(":", 1)[-1].split()) or type(e).__name__
        raise InputError(f"c2pa refuses this certificate ({msg}); a signing certificate must not be self-signed, "
                         "needs key usage digitalSignature and an extended key usage such as emailProtection "
                         "(this c2pa version refuses documentSigning), and the file must hold the chain, signing certificate first",
                         files.cert_path) from None
    return signer


def _generator() -> dict:
    from .. import __version__

    return {"name": "atelier", "version": __version__}


def _sign(signer: _Signer, data: bytes, fmt: str, manifest: dict, ingredients: list, dest=None) -> bytes:
    """Sign encoded image bytes; ``ingredients``: (ingredient JSON, file path or None). Writes the
    signed file to ``dest`` (a binary stream opened for reading and writing) or returns it."""
    c2pa = require_c2pa()
    mime = MIME_TYPES[fmt]
    fileless = [ing for ing, path in ingredients if path is None]  # a credit without a style file
    if fileless:
        manifest = {**manifest, "ingredients": [*manifest.get("ingredients", []), *fileless]}
    ingredients = [(ing, path) for ing, path in ingredients if path is not None]
    with _context() as ctx, signer.c2pa_signer() as s, c2pa.Builder(manifest, ctx) as b:
        if any(j.get("relationship") == "parentOf" for j, _ in ingredients):
            b.set_intent(c2pa.C2paBuilderIntent.EDIT)
        for ing, path in ingredients:
            with open(path, "rb") as f:
                b.add_ingredient(ing, _mime_of(path), f)
        out = dest if dest is not None else io.BytesIO()
        b.sign(s, mime, io.BytesIO(data), out)
    return b"" if dest is not None else out.getvalue()


def _mime_of(path) -> str:
    ext = pathlib.Path(path).suffix.lower().lstrip(".")
    return {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "tif": "image/tiff",
            "tiff": "image/tiff", "gif": "image/gif", "bmp": "image/bmp"}.get(ext, "image/jpeg")


@dataclass
class Credentials:
    """What to put on an output: a ``signer`` (from :func:`load_signer`; ``None``: no manifest,
    only the watermark), the ``content`` photo (parent ingredient), the ``styles`` files and
    their ``style_credits`` (one per style, or none), ``watermark`` (embed the invisible
    watermark, :mod:`atelier.io.watermark`). :func:`atelier.io.images.save_image` uses it."""

    signer: _Signer | None = None
    content: pathlib.Path | None = None
    styles: list = field(default_factory=list)
    style_credits: list = field(default_factory=list)
    watermark: bool = False

    def manifest(self, title: str, metadata: dict | None) -> tuple[dict, list]:
        """The manifest definition and the ingredient list for an output named ``title``."""
        meta = json.loads(json.dumps(metadata or {}, default=str))
        params = {k: v for k, v in meta.items() if k in ("method", "parameters", "model", "alpha", "style_blend",
                                                           "preserve_color", "style_size", "wct_layers")}
        action = {"action": "c2pa.edited", "digitalSourceType": DIGITAL_SOURCE_TYPE, "softwareAgent": _generator(),
                  "description": "neural style transfer of the photo with atelier", "parameters": {"atelier": params}}
        actions = [action] if self.content is not None else [{**action, "action": "c2pa.created"}]
        assertions = [{"label": "c2pa.actions", "data": {"actions": actions}},
                      {"label": PARAMETERS_LABEL, "data": {**meta, "watermark": bool(self.watermark),
                                                           "style_credits": [c.as_dict() for c in self.style_credits]}}]
        ingredients = []
        if self.content is not None:
            ingredients.append(({"title": pathlib.Path(self.content).name, "relationship": "parentOf"}, self.content))
        n = max(len(self.styles), len(self.style_credits))
        for i in range(n):
            path = self.styles[i] if i < len(self.styles) else None
            credit = self.style_credits[i] if i < len(self.style_credits) else None
            ing = {"title": credit.title if credit else pathlib.Path(path).name, "relationship": "componentOf"}
            if credit is not None:
                ing["metadata"] = {**credit.as_dict(), **({"file": pathlib.Path(path).name} if path else {})}
            ingredients.append((ing, path))
        return {"claim_generator_info": [_generator()], "title": title, "assertions": assertions}, ingredients

    def sign(self, data: bytes, fmt: str, title: str, metadata: dict | None, dest) -> None:
        """Sign the encoded image ``data`` (Pillow format ``fmt``) into the binary stream ``dest``."""
        if fmt not in MIME_TYPES:
            raise InputError(f"{fmt} files cannot carry Content Credentials; use .png, .jpg, .webp or .tif", title)
        manifest, ingredients = self.manifest(title, metadata)
        _sign(self.signer, data, fmt, manifest, ingredients, dest)


def make_credentials(*, sign: bool = True, cert=None, key=None, content=None, styles=(), style_credit=(),
                     credits_file=None, watermark: bool = False, n_styles: int | None = None) -> Credentials:
    """Check everything for :class:`Credentials` before a job: the signer (:func:`load_signer`),
    the credits (``style_credit`` strings and/or a ``credits_file``, in style order) and that
    their count matches the styles (``n_styles``, default ``len(styles)``; 0 = any count, for
    models whose styles are built in), and that the extras are installed.

    Raises:
        InputError: a bad certificate/key/credit/credits file (one line naming it).
        ImportError: the provenance extra is not installed.
    """
    if not sign and (cert is not None or key is not None or style_credit or credits_file):
        raise InputError("--c2pa-cert, --c2pa-key and --style-credit(s) go with --credentials; add it")
    if watermark:
        from .watermark import require_watermark

        require_watermark()
    credits = [t if isinstance(t, StyleCredit) else parse_style_credit(t) for t in style_credit]
    if credits_file is not None:
        credits += read_credits_file(credits_file)
    want = len(list(styles)) if n_styles is None else n_styles
    if credits and want and len(credits) != want:
        raise InputError(f"give one style credit per style image: {want} style(s), {len(credits)} credit(s)")
    signer = load_signer(cert, key) if sign else None
    return Credentials(signer=signer, content=pathlib.Path(content) if content else None,
                       styles=[pathlib.Path(s) for s in styles], style_credits=credits, watermark=watermark)


# --------------------------------------------------------------------------- verifying


@dataclass
class VerifyReport:
    """What :func:`verify_image` found.

    ``status``: ``"none"`` (no Content Credentials), ``"valid"`` (intact, signature good),
    ``"invalid"`` (``tampered``: the pixels changed after signing; or another failure).
    ``trusted``: the signer chains to a trust anchor (False for the local certificate).
    ``failures``: (code, explanation) pairs from c2pa, without the untrusted-signer note.
    ``manifest``: the active manifest (dict) or None. ``watermark``: a
    :class:`~atelier.io.watermark.WatermarkResult` when checked, else None.
    """

    path: pathlib.Path
    status: str
    trusted: bool = False
    tampered: bool = False
    signer: str | None = None
    issuer: str | None = None
    failures: list = field(default_factory=list)
    manifest: dict | None = None
    watermark: object = None

    @property
    def ok(self) -> bool:
        return self.status == "valid"

    def assertion(self, label: str):
        for a in (self.manifest or {}).get("assertions", []):
            if a.get("label") == label or a.get("label", "").startswith(label + "."):
                return a.get("data")
        return None

    @property
    def digital_source_types(self) -> list:
        acts = (self.assertion("c2pa.actions") or {}).get("actions", [])
        return [a["digitalSourceType"] for a in acts if a.get("digitalSourceType")]

    @property
    def parameters(self) -> dict | None:
        return self.assertion(PARAMETERS_LABEL)

    @property
    def ingredients(self) -> list:
        return list((self.manifest or {}).get("ingredients", []))

    def lines(self) -> list[str]:
        """A human summary, one fact a line."""
        if self.status == "none":
            out = [f"{self.path}: no Content Credentials"]
        elif self.status == "valid":
            who = f"{self.signer} (issuer {self.issuer})"
            out = [f"{self.path}: Content Credentials valid",
                   f"signed by: {who}: " + ("trusted" if self.trusted else "untrusted signer (on no trust list, "
                                             "like atelier's local certificate: the file is intact, who signed "
                                             "it is not vouched for)")]
        else:
            what = "TAMPERED: the image changed after it was signed" if self.tampered else "INVALID Content Credentials"
            out = [f"{self.path}: {what}"] + [f"  {c}: {e}" for c, e in self.failures]
        if self.manifest is not None:
            gen = (self.manifest.get("claim_generator_info") or [{}])[0]
            out.append(f"made with: {gen.get('name')} {gen.get('version', '')}".rstrip())
            for t in self.digital_source_types:
                out.append(f"digital source type: {t.rsplit('/', 1)[-1]}")
            p = self.parameters or {}
            if p.get("method"):
                out.append(f"method: {p['method']}" + (f" ({p['model']})" if p.get("model") else ""))
            for ing in self.ingredients:
                md = ing.get("metadata") or {}
                extra = ", ".join(f"{k} {md[k]}" for k in ("artist", "licence") if md.get(k))
                out.append(f"ingredient ({ing.get('relationship')}): {ing.get('title')}" + (f" [{extra}]" if extra else ""))
        if self.watermark is not None:
            out.append(self.watermark.describe())
        return out


def verify_image(path: os.PathLike | str, *, trust_anchors: os.PathLike | str | None = None,
                 watermark: bool | None = None) -> VerifyReport:
    """Read and validate the Content Credentials of an image file.

    Args:
        path: the image.
        trust_anchors: a PEM file of CA certificates to trust (e.g. the local ``local-ca.pem``);
            default: none, so every signer is untrusted unless c2pa's settings say otherwise.
        watermark: look for the invisible watermark too (``None``: when the manifest says one was
            embedded; needs invisible-watermark).

    Returns:
        A :class:`VerifyReport`.

    Raises:
        InputError: the file is missing or not an image; a trust anchors file that is not PEM.
        ImportError: c2pa-python is not installed.
    """
    from .decode import open_image

    p = pathlib.Path(os.fspath(path)).expanduser()
    open_image(p)  # InputError naming the file for a missing file or a non-image
    c2pa = require_c2pa()
    settings = {"verify": {"verify_trust": True}}
    if trust_anchors is not None:
        t = pathlib.Path(os.fspath(trust_anchors)).expanduser()
        pem = t.read_text() if t.is_file() else ""
        if "BEGIN CERTIFICATE" not in pem:
            raise InputError("is not a PEM file of CA certificates", t)
        settings["trust"] = {"trust_anchors": pem}
    report = VerifyReport(path=p, status="none")
    with c2pa.Context(c2pa.Settings.from_dict(settings)) as ctx:
        try:
            with open(p, "rb") as f:
                reader = c2pa.Reader.try_create(_mime_of(p), f, None, ctx)
                if reader is not None:
                    with reader:
                        state = reader.get_validation_state()
                        results = reader.get_validation_results() or {}
                        report.manifest = reader.get_active_manifest()
        except c2pa.C2paError as e:
            if "NotSupported" in type(e).__name__ or "type is unsupported" in str(e):
                reader = None  # a format without manifests (BMP, GIF): nothing to read
            else:
                report.status, report.failures = "invalid", [("c2pa", str(e))]
                reader = None
    if report.manifest is not None:
        fails = (results.get("activeManifest") or {}).get("failure", [])
        report.failures = [(f.get("code"), f.get("explanation")) for f in fails
                           if f.get("code") != "signingCredential.untrusted"]
        report.tampered = any(c and (".mismatch" in c and ("Hash" in c or "hash" in c)) for c, _ in report.failures)
        report.trusted = state == "Trusted"
        report.status = "valid" if state in ("Valid", "Trusted") and not report.failures else "invalid"
        info = report.manifest.get("signature_info") or {}
        report.signer, report.issuer = info.get("common_name"), info.get("issuer")
    if watermark is None:
        watermark = bool((report.parameters or {}).get("watermark"))
    if watermark:
        import numpy as np

        from .watermark import detect_watermark

        from PIL import Image

        with Image.open(p) as f:  # the colour as stored: a transparent image's RGB, not composited over white
            rgb = np.asarray(f.convert("RGBA"))[..., :3]
        report.watermark = detect_watermark(rgb)
    return report


def local_ca_path() -> pathlib.Path:
    """The local CA certificate (``--trust-anchor`` it to trust outputs signed on this machine)."""
    return local_signer_dir() / "local-ca.pem"


def sign_image(path: os.PathLike | str, output: os.PathLike | str | None = None, *, content=None, styles=(),
               style_credits=(), cert=None, key=None, watermark: bool = False,
               metadata: dict | None = None) -> pathlib.Path:
    """Sign an image file that already exists with Content Credentials (the Python API's way:
    ``atelier.stylize(...).save("out.png")`` then ``atelier.sign_image("out.png", ...)``).

    Args:
        path: the image (PNG, JPEG, WebP or TIFF).
        output: where to write the signed file (default: replace ``path``, atomically).
        content: the photo it was made from (the parent ingredient), a path or None.
        styles: the style image files (ingredients), in order.
        style_credits: one per style: :class:`StyleCredit` or ``"ARTIST, TITLE, LICENCE"`` strings.
        cert, key: your PEM certificate chain and key (default: the local certificate).
        watermark: also embed the invisible watermark (the pixels are decoded and encoded again:
            lossless for PNG/TIFF, one more JPEG/WebP generation otherwise).
        metadata: the parameters to record (default: atelier's metadata stored in the file, if any).

    Returns:
        The path written.

    Raises:
        InputError: a bad file, certificate, key or credit (one line naming it); nothing is written.
        ImportError: the provenance extra is not installed.

    Example:
        >>> import atelier  # doctest: +SKIP
        >>> atelier.sign_image("out.png", content="photo.jpg", styles=["starry.jpg"],
        ...                    style_credits=["Van Gogh, The Starry Night, public domain"])  # doctest: +SKIP
    """
    from ..core.files import atomic_write
    from .decode import open_image
    from .images import OUTPUT_EXTENSIONS, check_output_path, read_alpha, read_metadata, save_image

    src = pathlib.Path(os.fspath(path)).expanduser()
    im = open_image(src)  # InputError naming the file
    dst = check_output_path(output if output is not None else src)
    creds = make_credentials(cert=cert, key=key, content=content, styles=list(styles),
                             style_credit=list(style_credits), watermark=watermark)
    meta = metadata if metadata is not None else read_metadata(src)
    fmt = OUTPUT_EXTENSIONS[dst.suffix.lower()]
    from PIL import Image

    with Image.open(src) as f:
        src_fmt = f.format
    if watermark or fmt != src_fmt:  # decoded and encoded again; the colour under transparent parts is kept
        import numpy as np

        alpha = read_alpha(src)
        rgb = im if alpha is None else Image.fromarray(np.asarray(Image.open(src).convert("RGBA"))[..., :3].copy())
        save_image(rgb, dst, meta, alpha=alpha, credentials=creds)
        return dst
    if fmt not in MIME_TYPES:
        raise InputError(f"{fmt} files cannot carry Content Credentials; use .png, .jpg, .webp or .tif", dst)
    data = src.read_bytes()
    try:
        with atomic_write(dst, "w+b") as f:
            creds.sign(data, fmt, dst.name, meta, f)
    except InputError:
        raise
    except Exception as e:  # c2pa.C2paError
        raise InputError(f"signing the Content Credentials failed ({e})", dst) from None
    return dst
