"""Certificates for a local broker's TLS listeners: a CA, a server cert, a client cert (mTLS).

All PEM, which Kafka reads directly (`ssl.keystore.type=PEM`, KIP-651) and Python's `ssl`
module too, so no keytool and no keystore passwords. For local tests only: the CA key is
thrown away once the two certificates are signed.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 3650
HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class CertFiles:
    """Where the PEM files live: the broker's keystore and truststore, the client's three files."""

    ca: Path  # the CA certificate: the broker's truststore and the client's cafile
    server: Path  # the server's private key followed by its certificate: the broker's keystore
    client_cert: Path
    client_key: Path

    @classmethod
    def in_dir(cls, directory: Path) -> CertFiles:
        return cls(
            directory / "ca.pem",
            directory / "server.pem",
            directory / "client.pem",
            directory / "client-key.pem",
        )

    def exist(self) -> bool:
        return all(
            path.exists() for path in (self.ca, self.server, self.client_cert, self.client_key)
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "streamlearn local Kafka"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#8, unencrypted: the form Kafka's PEM keystore reads without `ssl.key.password`."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
    )


def _leaf(
    common_name: str,
    usage: x509.ObjectIdentifier,
    ca_name: x509.Name,
    ca_key: rsa.RSAPrivateKey,
    sans: list[x509.GeneralName] | None = None,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key()
    builder = _builder(_name(common_name), ca_name, key)
    builder = builder.add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True
    )
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _write_private(path: Path, data: bytes) -> None:
    """Write a file that holds a private key: readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


_CA_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True,
    crl_sign=True, encipher_only=False, decipher_only=False,
)  # fmt: skip


def generate_certs(directory: Path) -> CertFiles:
    """Write a fresh CA, a server cert (SAN 127.0.0.1 and localhost) and a client cert to
    `directory`, each signed by the CA; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    files = CertFiles.in_dir(directory)
    ca_key = _key()
    ca_name = _name("streamlearn local Kafka CA")
    ca = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    sans = [x509.IPAddress(ipaddress.ip_address(HOSTS[0])), x509.DNSName(HOSTS[1])]
    server_key, server = _leaf("localhost", ExtendedKeyUsageOID.SERVER_AUTH, ca_name, ca_key, sans)
    client_key, client = _leaf(
        "streamlearn-client", ExtendedKeyUsageOID.CLIENT_AUTH, ca_name, ca_key
    )
    files.ca.write_bytes(_cert_pem(ca))
    _write_private(files.server, _key_pem(server_key) + _cert_pem(server) + _cert_pem(ca))
    files.client_cert.write_bytes(_cert_pem(client))
    _write_private(files.client_key, _key_pem(client_key))
    return files
