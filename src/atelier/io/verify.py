"""Reading Content Credentials back, and signing a file that exists (issue 28): the other half
of :mod:`atelier.io.provenance` (which builds and signs manifests as outputs are written).

:func:`verify_image` says: no credentials, valid (signed by a trusted or an *untrusted* signer:
a locally made certificate is untrusted, which is not an error), or invalid (the pixels changed
after signing: tampering; or a broken signature), and looks for the invisible watermark.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass, field

from ..core.errors import InputError
from .certificates import local_signer_dir
from .provenance import MIME_TYPES, PARAMETERS_LABEL, _mime_of, make_credentials, require_c2pa

__all__ = ["VerifyReport", "local_ca_path", "sign_image", "verify_image"]


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
