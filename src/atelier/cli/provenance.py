"""Content Credentials on the command line (issue 28): the options that the commands writing
images share (``--credentials``, ``--style-credit``, ``--style-credits``, ``--c2pa-cert``,
``--c2pa-key``, ``--watermark``) and ``atelier verify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from .common import app, out, _fail


def opt_credentials():
    return typer.Option(False, "--credentials", help="Sign the output with Content Credentials (C2PA): tool, "
                        "method and parameters, 'made by a trained algorithm', the style images as ingredients. "
                        "Needs pip install 'atelier[provenance]'. See docs/provenance.md.")


def opt_style_credit():
    return typer.Option(None, "--style-credit", metavar="'ARTIST, TITLE, LICENCE'",
                        help="With --credentials: credit of a style image, one per --style in order, e.g. "
                        "'Van Gogh, The Starry Night, public domain'.")


def opt_style_credits():
    return typer.Option(None, "--style-credits", metavar="FILE", help="With --credentials: the style credits from "
                        "a .json list of {artist, title, licence} or a .csv with that header, in style order.")


def opt_cert():
    return typer.Option(None, "--c2pa-cert", metavar="PEM", help="With --credentials: your certificate chain "
                        "(PEM, signing certificate first) [default: a local certificate made on first use].")


def opt_key():
    return typer.Option(None, "--c2pa-key", metavar="PEM", help="With --credentials: the private key of --c2pa-cert.")


def opt_watermark():
    return typer.Option(False, "--watermark", help="Embed an invisible DWT-DCT watermark that 'atelier verify' "
                        "detects (images of at least 256x256 px; see docs/provenance.md for what it survives).")


def build_credentials(credentials: bool, watermark: bool, cert: Optional[Path], key: Optional[Path],
                      style_credit: Optional[List[str]], style_credits: Optional[Path], *, content=None,
                      styles=(), n_styles: Optional[int] = None, output: Optional[Path] = None):
    """The checked :class:`~atelier.io.provenance.Credentials` (or None when neither
    ``--credentials`` nor ``--watermark`` is given); exits 2 with one line on any problem,
    before the job starts and before anything is written."""
    if not credentials and not watermark:
        if cert or key or style_credit or style_credits:
            raise _fail("--c2pa-cert, --c2pa-key, --style-credit and --style-credits go with --credentials; add it")
        return None
    from ..core.errors import InputError

    if credentials and output is not None:
        from ..io.images import OUTPUT_EXTENSIONS
        from ..io.provenance import MIME_TYPES

        fmt = OUTPUT_EXTENSIONS.get(Path(output).suffix.lower())
        if fmt is not None and fmt not in MIME_TYPES:
            raise _fail(f"{output}: {fmt} files cannot carry Content Credentials; use .png, .jpg, .webp or .tif")
    try:
        from ..io.provenance import make_credentials

        return make_credentials(sign=credentials, cert=cert, key=key, content=content, styles=list(styles),
                                style_credit=list(style_credit or []), credits_file=style_credits,
                                watermark=watermark, n_styles=n_styles)
    except ImportError as e:
        raise _fail(str(e)) from None
    except InputError as e:
        raise _fail(str(e)) from None


@app.command()
def verify(
    image: Path = typer.Argument(..., metavar="IMAGE", help="An image file (from any tool)."),
    trust_anchor: Optional[Path] = typer.Option(None, "--trust-anchor", metavar="PEM", help="CA certificates to "
                                                "trust (e.g. the local-ca.pem atelier made, to trust your own "
                                                "outputs)."),
    watermark: Optional[bool] = typer.Option(None, "--watermark/--no-watermark", help="Look for atelier's "
                                             "invisible watermark [default: when the manifest says it has one]."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (with the whole manifest)."),
):
    """Read and validate the Content Credentials (C2PA) of IMAGE.

    Exit status: 0 valid (a trusted or an untrusted signer, said which), 1 invalid (tampered:
    the image changed after signing; or a broken signature), 3 no Content Credentials (the
    watermark line then says whether atelier's watermark is in the pixels), 2 bad input.
    """
    from ..core.errors import InputError

    try:
        from ..io.verify import verify_image

        report = verify_image(image, trust_anchors=trust_anchor, watermark=watermark)
    except ImportError as e:
        raise _fail(str(e)) from None
    except InputError as e:
        raise _fail(str(e)) from None
    wm = report.watermark
    if as_json:
        out.print_json(json.dumps({"file": str(report.path), "status": report.status, "trusted": report.trusted,
                                   "tampered": report.tampered, "signer": report.signer, "issuer": report.issuer,
                                   "failures": report.failures, "digital_source_types": report.digital_source_types,
                                   "watermark": None if wm is None else {"present": wm.present,
                                                                         "matching_bits": wm.matching_bits,
                                                                         "total_bits": wm.total_bits},
                                   "manifest": report.manifest}, default=str))
    else:
        for line in report.lines():
            out.print(line, highlight=False, soft_wrap=True, markup=False)
    if report.status == "valid":
        return
    if report.status == "invalid":
        raise typer.Exit(1)
    if wm is not None and wm.present:
        out.print("the Content Credentials are gone (stripped or re-encoded), but atelier's watermark is there",
                  highlight=False)
    raise typer.Exit(3)


def manifest_summary(image: Path) -> Optional[List[str]]:
    """``atelier info``: the summary lines of IMAGE's Content Credentials, or None when it has
    none or c2pa-python is not installed (info then shows only atelier's parameters)."""
    try:
        from ..io.provenance import require_c2pa
        from ..io.verify import verify_image

        require_c2pa()
        report = verify_image(image)
    except Exception:  # info must never fail because of the credentials
        return None
    return None if report.status == "none" else report.lines()
