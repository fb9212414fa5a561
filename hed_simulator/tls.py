"""A throwaway certificate authority and server certificate for serving https on loopback.

Generated in-process with the `cryptography` package (already installed: the Fivetran SDK
depends on it), not the `openssl` binary: no subprocess or PATH dependency, and no
differences between OpenSSL and macOS's LibreSSL command lines. The CA is a real CA
(basicConstraints CA:TRUE) and signs a separate leaf for 127.0.0.1, ::1 and localhost, so
strict verification (Python 3.13's VERIFY_X509_STRICT) accepts the chain. Clients trust it
through `REQUESTS_CA_BUNDLE=<ca_file>`; everyone else gets a verification error, as with a
real self-signed server.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Short validity: the certificates live as long as one simulator; a day of slack on both
# sides absorbs clock differences between processes.
_VALID_BEFORE = timedelta(days=1)
_VALID_AFTER = timedelta(days=7)
_LOOPBACK_NAMES = ("localhost",)
_LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")
CA_FILE_NAME = "hed-simulator-ca.pem"
_CERT_FILE_NAME = "server.pem"
_KEY_FILE_NAME = "server-key.pem"


@dataclass(frozen=True)
class TlsFiles:
    """PEM paths: the CA clients trust, the server's chain and its private key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def generate_tls_files(directory: Path) -> TlsFiles:
    """Write a fresh CA and a loopback server certificate signed by it into `directory`."""
    now = datetime.now(timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _build_ca(ca_key, now)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _build_server(server_key, ca_key, ca_cert, now)
    files = TlsFiles(
        directory / CA_FILE_NAME, directory / _CERT_FILE_NAME, directory / _KEY_FILE_NAME
    )
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain = server_cert.public_bytes(serialization.Encoding.PEM)
    files.cert_file.write_bytes(chain + ca_cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.touch(mode=0o600)
    files.key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A TLS 1.2+ server context presenting the generated chain."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert_file, files.key_file)
    return context


def _build_ca(key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "HED simulator test CA")])
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        _base_builder(name, name, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _build_server(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    now: datetime,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    alternative_names = [x509.DNSName(host) for host in _LOOPBACK_NAMES] + [
        x509.IPAddress(ipaddress.ip_address(address)) for address in _LOOPBACK_ADDRESSES
    ]
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=True,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        _base_builder(name, ca_cert.subject, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _base_builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _VALID_BEFORE)
        .not_valid_after(now + _VALID_AFTER)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
