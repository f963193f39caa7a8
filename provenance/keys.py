"""Keys and certificates: a local root CA -> intermediate -> signing certificate, and the watermark key.

The signing certificate is shaped the way c2pa-python 0.38 checks it: Authority and Subject Key
Identifiers, keyUsage digitalSignature only, extendedKeyUsage emailProtection, not a CA, and
long-lived (a manifest signed without a timestamp turns invalid once its signer expires).
Private keys are written 0600 and never logged or returned by any API.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustframe.errors import ConfigError, KeysMissing
from trustframe.settings import Settings

ROOT_CERT, INTERMEDIATE_CERT, SIGNER_CERT = "root.pem", "intermediate.pem", "signer.pem"
SIGNER_CHAIN, SIGNER_KEY, WATERMARK_KEY = "signer-chain.pem", "signer.key", "watermark.key"
ALGORITHMS = ("es256", "ed25519")
_YEARS = 365


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TrustFrame local"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _new_key(alg: str):
    if alg == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject: str, key, issuer_cert, issuer_key, *, ca: bool, path_len: int | None,
          days: int) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    issuer_name = issuer_cert.subject if issuer_cert is not None else _name(subject)
    issuer_pub = (issuer_cert.public_key() if issuer_cert is not None else key.public_key())
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_pub), critical=False)
    )
    if ca:
        usage = dict(digital_signature=False, key_cert_sign=True, crl_sign=True)
    else:
        usage = dict(digital_signature=True, key_cert_sign=False, crl_sign=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
    b = b.add_extension(x509.KeyUsage(content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False,
                                      encipher_only=False, decipher_only=False, **usage), critical=True)
    algo = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return b.sign(issuer_key, algo)


def _write_private(path: Path, data: bytes) -> None:
    """Create a 0600 file atomically; the secret never exists with wider permissions."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def init_keys(settings: Settings, alg: str = "es256", force: bool = False) -> Path:
    """Create the local chain and the watermark key in `settings.keys_dir`; returns the folder.

    Refuses to overwrite existing keys unless `force` (overwriting orphans every signed file's
    trust and every watermark already embedded).
    """
    if alg not in ALGORITHMS:
        raise ConfigError(f"unknown signing algorithm {alg!r}; choose one of {', '.join(ALGORITHMS)}")
    d = settings.keys_dir
    if (d / SIGNER_KEY).exists() and not force:
        raise ConfigError(f"keys already exist in {d}; pass --force to replace them")
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    root_key, int_key, sig_key = _new_key(alg), _new_key(alg), _new_key(alg)
    root = _cert("TrustFrame Local Root CA", root_key, None, root_key, ca=True, path_len=1,
                 days=30 * _YEARS)
    inter = _cert("TrustFrame Local Intermediate CA", int_key, root, root_key, ca=True, path_len=0,
                  days=25 * _YEARS)
    signer = _cert("TrustFrame Signer", sig_key, inter, int_key, ca=False, path_len=None,
                   days=20 * _YEARS)
    (d / ROOT_CERT).write_bytes(_pem(root))
    (d / INTERMEDIATE_CERT).write_bytes(_pem(inter))
    (d / SIGNER_CERT).write_bytes(_pem(signer))
    (d / SIGNER_CHAIN).write_bytes(_pem(signer) + _pem(inter))
    pkcs8 = serialization.PrivateFormat.PKCS8
    enc = serialization.NoEncryption()
    _write_private(d / SIGNER_KEY, sig_key.private_bytes(serialization.Encoding.PEM, pkcs8, enc))
    # The CA keys are kept (0600) so that a user can issue a fresh signer later; they are never
    # read by signing.
    _write_private(d / "root.key", root_key.private_bytes(serialization.Encoding.PEM, pkcs8, enc))
    _write_private(d / "intermediate.key", int_key.private_bytes(serialization.Encoding.PEM, pkcs8, enc))
    _write_private(d / WATERMARK_KEY, secrets.token_bytes(32).hex().encode())
    (d / "alg").write_text(alg)
    return d


def ensure_keys(settings: Settings) -> None:
    """Create the local keys on first use; with the user's own chain, only the watermark key."""
    if settings.signer_cert is None and not (settings.keys_dir / SIGNER_KEY).exists():
        init_keys(settings)
    elif not (settings.keys_dir / WATERMARK_KEY).exists():
        settings.keys_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(settings.keys_dir, 0o700)
        _write_private(settings.keys_dir / WATERMARK_KEY, secrets.token_bytes(32).hex().encode())


@dataclass(frozen=True)
class CertSummary:
    role: str
    subject: str
    issuer: str
    sha256: str
    not_after: str
    algorithm: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _summary(role: str, cert: x509.Certificate) -> CertSummary:
    key = cert.public_key()
    algorithm = "Ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else f"EC {key.curve.name}"
    return CertSummary(role, cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
                       cert.fingerprint(hashes.SHA256()).hex(":"),
                       cert.not_valid_after_utc.isoformat(), algorithm)


def show_keys(settings: Settings) -> list[CertSummary]:
    """Subjects, fingerprints and expiry of the signing chain and trust anchors (no secrets)."""
    chain_path, _ = signer_files(settings)
    certs = x509.load_pem_x509_certificates(chain_path.read_bytes())
    out = [_summary("signer" if i == 0 else "intermediate", c) for i, c in enumerate(certs)]
    out += [_summary("trust anchor", c) for c in trust_anchor_certs(settings)]
    return out


def signer_files(settings: Settings, need_key: bool = True) -> tuple[Path, Path | None]:
    """(PEM chain, PEM private key) that signing uses: the user's own, or the local chain.

    With `need_key=False` (a callback signer holds the key elsewhere) the key may be absent.
    """
    if settings.signer_cert is not None:
        if need_key and settings.signer_key is None:
            raise ConfigError("signer_cert is set but signer_key is not")
        for p in (settings.signer_cert, settings.signer_key if need_key else None):
            if p is not None and not Path(p).is_file():
                raise ConfigError(f"configured signing file not found: {p}")
        return Path(settings.signer_cert), Path(settings.signer_key) if settings.signer_key else None
    d = settings.keys_dir
    if not (d / SIGNER_KEY).exists():
        raise KeysMissing(f"no signing keys in {d}; run `trustframe keys init`")
    return d / SIGNER_CHAIN, d / SIGNER_KEY


def signer_alg(settings: Settings) -> str:
    if settings.signer_cert is None and (settings.keys_dir / "alg").exists():
        return (settings.keys_dir / "alg").read_text().strip()
    return settings.signer_alg


def trust_anchor_certs(settings: Settings) -> list[x509.Certificate]:
    """The local root (if any) plus every certificate in the configured PEM bundles."""
    certs = []
    root = settings.keys_dir / ROOT_CERT
    if root.exists():
        certs += x509.load_pem_x509_certificates(root.read_bytes())
    for bundle in settings.trust_anchors:
        try:
            certs += x509.load_pem_x509_certificates(Path(bundle).read_bytes())
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot load trust anchors from {bundle}: {e}") from e
    return certs


def trust_anchors_pem(settings: Settings) -> str:
    return "".join(_pem(c).decode() for c in trust_anchor_certs(settings))


def watermark_key(settings: Settings) -> bytes:
    """The 32-byte watermark key (separate from the signing key)."""
    p = settings.keys_dir / WATERMARK_KEY
    if not p.exists():
        raise KeysMissing(f"no watermark key in {settings.keys_dir}; run `trustframe keys init`")
    return bytes.fromhex(p.read_text().strip())
