"""Signing credentials: a development CA and an ES256 leaf it issued, or a configured certificate.

c2pa-python refuses a lone self-signed leaf certificate, so on first use a data dir gets a small
CA and a leaf issued by it (key usage digitalSignature, extended key usage emailProtection, as the
C2PA trust model asks of a signer). Verifiers trust the CA as an anchor; production configures the
PEM files of a certificate from a real CA instead.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from reelfoundry.config import Settings
from reelfoundry.errors import ConfigurationError

DEV_DIR = "provenance"
CA_FILE, CHAIN_FILE, KEY_FILE = "dev-ca.pem", "dev-signer-chain.pem", "dev-signer.key"


@dataclass(frozen=True)
class SigningCredentials:
    """A certificate chain (leaf first, then its issuers), the leaf's private key and the CA to trust."""

    chain_pem: bytes
    key_pem: bytes
    trust_anchor_pem: bytes


def configured_credentials(settings: Settings) -> SigningCredentials:
    """The credentials settings name, or the data dir's development ones (made on first use)."""
    chain, key, anchor = settings.signing_cert_chain, settings.signing_key, settings.signing_trust_anchor
    if chain is not None and key is not None and anchor is not None:
        return load_credentials(chain, key, anchor)
    return dev_credentials(settings.data_dir)


def trust_anchor_path(settings: Settings) -> Path:
    """The CA that verification trusts: the configured one, else the data dir's development CA."""
    return settings.signing_trust_anchor or settings.data_dir / DEV_DIR / CA_FILE


def load_credentials(chain: Path, key: Path, trust_anchor: Path) -> SigningCredentials:
    """Credentials from PEM files (production: a certificate from a real CA)."""
    try:
        return SigningCredentials(chain.read_bytes(), key.read_bytes(), trust_anchor.read_bytes())
    except OSError as exc:
        raise ConfigurationError(f"cannot read signing credentials: {exc}") from exc


def dev_credentials(data_dir: Path) -> SigningCredentials:
    """The data dir's development credentials, created on first use (key file mode 0600)."""
    folder = data_dir / DEV_DIR
    paths = (folder / CHAIN_FILE, folder / KEY_FILE, folder / CA_FILE)
    if not all(p.is_file() for p in paths):
        _create_dev_credentials(folder)
    return load_credentials(*paths)


def _create_dev_credentials(folder: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ReelFoundry development"),
            ]
        )

    def usage(*, sign: bool, certs: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=certs,
            crl_sign=certs,
            encipher_only=False,
            decipher_only=False,
        )

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("ReelFoundry development CA"))
        .issuer_name(name("ReelFoundry development CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign=False, certs=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("ReelFoundry development signer"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign=True, certs=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    folder.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write(folder / KEY_FILE, key_bytes, 0o600)
    _write(folder / CHAIN_FILE, leaf.public_bytes(pem) + ca.public_bytes(pem), 0o644)
    _write(folder / CA_FILE, ca.public_bytes(pem), 0o644)  # last: its presence marks a complete set


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
