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

:func:`atelier.io.verify.verify_image` reads a file back and says: no credentials, valid (signed by
a trusted or an *untrusted* signer: a locally made certificate is untrusted, which is not an
error), or invalid (the pixels changed after signing: tampering; or a broken signature);
:func:`atelier.io.verify.sign_image` signs a file that exists.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
from dataclasses import dataclass, field

from ..core.errors import InputError
from .certificates import SignerFiles, load_signer_files, local_signer_files

__all__ = ["DIGITAL_SOURCE_TYPE", "MIME_TYPES", "PARAMETERS_LABEL", "Credentials", "StyleCredit", "load_signer",
           "make_credentials", "parse_style_credit", "read_credits_file", "require_c2pa"]

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
    from importlib.metadata import PackageNotFoundError, version  # as atelier.__version__ (no upward import)

    try:
        v = version("atelier")
    except PackageNotFoundError:
        v = "0.0.0+local"
    return {"name": "atelier", "version": v}


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
