"""Signing certificates for Content Credentials (issue 28): the local certificate made on first
use, and the user's own certificate chain and key, checked before any work.

What c2pa (c2pa-rs 0.91, through c2pa-python 0.38) accepts as a signing certificate, found by
trying (and stated in the C2PA specification's certificate profile): an X.509 v3 end-entity
certificate that is **not self-signed** (a self-signed one is refused: "the certificate is
invalid"), with a **key usage** of digital signature and an **extended key usage** from the
C2PA list (a certificate without an EKU is refused too, and so, by this version, is
documentSigning 1.3.6.1.5.5.7.3.36), sent as a PEM chain leaf first, then
its issuers (without the root is fine; the root may be included). So the local signer is a
two-certificate chain: a local CA (``CA:TRUE, pathlen 0``, key usage keyCertSign/cRLSign) and
a leaf (``CA:FALSE``, key usage digitalSignature, EKU emailProtection 1.3.6.1.5.5.7.3.4, subject
and authority key identifiers), both on P-256 keys (ES256), valid ten years.

Such a chain verifies as *valid but untrusted*: no trust list holds the local CA. ``atelier
verify --trust-anchor CA.pem`` trusts it explicitly (``local-ca.pem`` in the same folder).
"""

from __future__ import annotations

import datetime
import os
import pathlib
import shutil
import tempfile
from dataclasses import dataclass

from ..core.errors import InputError
from ..core.files import config_dir

__all__ = ["LOCAL_DIR_NAME", "SignerFiles", "load_signer_files", "local_signer_dir", "local_signer_files",
           "make_local_signer"]

#: Folder (inside the config folder) of the local certificate.
LOCAL_DIR_NAME = "c2pa"
_EMAIL_PROTECTION = "1.3.6.1.5.5.7.3.4"  # c2pa-rs 0.91 refuses documentSigning (tried: "missing required EKU")


@dataclass(frozen=True)
class SignerFiles:
    """A certificate chain and its private key, read and checked: ``chain`` (PEM bytes, leaf
    first), ``key`` (PEM bytes), ``alg`` (``es256``, ``es384``, ``es512``, ``ps256`` or
    ``ed25519``: from the key), ``subject`` and ``issuer`` (the leaf's common names, for
    messages), ``local`` (made by :func:`make_local_signer`), ``cert_path`` (where it came from)."""

    chain: bytes
    key: bytes
    alg: str
    subject: str
    issuer: str
    local: bool
    cert_path: pathlib.Path


def local_signer_dir() -> pathlib.Path:
    """Where the local certificate lives: ``<config folder>/c2pa`` (``$ATELIER_CONFIG_DIR``, else
    the platform's user config folder)."""
    return config_dir() / LOCAL_DIR_NAME


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "atelier (local, untrusted)")])


def make_local_signer(folder: pathlib.Path, days: int = 3650) -> None:
    """Write a new local CA and signing certificate into ``folder`` (created atomically: a
    temporary folder renamed into place, so two processes never see half of one; the one that
    loses the race keeps the winner's). Files: ``local-ca.pem``, ``signer-chain.pem`` (leaf +
    CA), ``signer-key.pem`` (PKCS#8, mode 0600).

    Raises:
        InputError: the folder cannot be written.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ObjectIdentifier

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=10), now + datetime.timedelta(days=days)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "user"
    no = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
              encipher_only=False, decipher_only=False)
    ca = (x509.CertificateBuilder().subject_name(_name(f"atelier local CA ({user})"))
          .issuer_name(_name(f"atelier local CA ({user})")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True, **no), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(_name(f"atelier local signer ({user})")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **no),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ObjectIdentifier(_EMAIL_PROTECTION)]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = pathlib.Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        (tmp / "local-ca.pem").write_bytes(ca.public_bytes(pem))
        (tmp / "signer-chain.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
        kf = tmp / "signer-key.pem"
        fd = os.open(kf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "signer-key.pem").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process made one first: keep it
    except OSError as e:
        raise InputError(f"cannot write the local signing certificate ({e.strerror or e}); set ATELIER_CONFIG_DIR "
                         "to a writable folder, or give --c2pa-cert and --c2pa-key", folder) from None


def local_signer_files() -> SignerFiles:
    """The local certificate and key, made on first use (and made again when expired)."""
    folder = local_signer_dir()
    if not (folder / "signer-key.pem").is_file() or not (folder / "signer-chain.pem").is_file():
        make_local_signer(folder)
    files = load_signer_files(folder / "signer-chain.pem", folder / "signer-key.pem", local=True)
    return files


def _cn(name) -> str:
    from cryptography.x509.oid import NameOID

    got = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(got[0].value) if got else name.rfc4514_string()


def _read(path: pathlib.Path, what: str) -> bytes:
    p = pathlib.Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise InputError(f"{what} file not found", p)
    if p.is_dir():
        raise InputError(f"is a folder; give the {what} file (PEM)", p)
    try:
        return p.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read the {what} file ({e.strerror or e})", p) from None


def load_signer_files(cert: os.PathLike | str, key: os.PathLike | str, local: bool = False) -> SignerFiles:
    """Read a PEM certificate chain (leaf first) and its PEM private key, and check them.

    Checks: both files exist and parse; the key is unencrypted; the key belongs to the first
    certificate; the leaf is valid now. (What c2pa itself refuses, e.g. a self-signed leaf, is
    caught by the test signature of :func:`atelier.io.provenance.load_signer`.)

    Raises:
        InputError: naming the file and the problem.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    cert_p, key_p = pathlib.Path(os.fspath(cert)).expanduser(), pathlib.Path(os.fspath(key)).expanduser()
    chain, key_bytes = _read(cert_p, "certificate"), _read(key_p, "private key")
    try:
        certs = x509.load_pem_x509_certificates(chain)
    except ValueError:
        raise InputError("is not a PEM certificate chain (expected -----BEGIN CERTIFICATE----- blocks, the signing "
                         "certificate first)", cert_p) from None
    try:
        private = serialization.load_pem_private_key(key_bytes, password=None)
    except TypeError:
        raise InputError("the private key is encrypted; give an unencrypted PEM key (e.g. openssl pkey -in KEY "
                         "-out plain.pem)", key_p) from None
    except ValueError:
        raise InputError("is not a PEM private key (expected -----BEGIN PRIVATE KEY-----)", key_p) from None
    leaf = certs[0]
    if private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
            != leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise InputError(f"this key does not belong to the certificate {cert_p.name} (its first certificate, "
                         f"{_cn(leaf.subject)!r})", key_p)
    now = datetime.datetime.now(datetime.timezone.utc)
    if not (leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc):
        if local:  # an expired local certificate is simply made again
            shutil.rmtree(cert_p.parent, ignore_errors=True)
            return local_signer_files()
        raise InputError(f"the certificate is not valid now (valid {leaf.not_valid_before_utc:%Y-%m-%d} to "
                         f"{leaf.not_valid_after_utc:%Y-%m-%d})", cert_p)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        alg = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}.get(private.curve.name)
    elif isinstance(private, rsa.RSAPrivateKey):
        alg = "ps256"
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        alg = "ed25519"
    else:
        alg = None
    if alg is None:
        raise InputError("unsupported key type for C2PA; use an EC key on P-256/P-384/P-521, RSA (PS256) or Ed25519",
                         key_p)
    return SignerFiles(chain=chain, key=key_bytes, alg=alg, subject=_cn(leaf.subject), issuer=_cn(leaf.issuer),
                       local=local, cert_path=cert_p)
