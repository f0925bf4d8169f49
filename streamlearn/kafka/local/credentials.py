"""What a client needs to reach a local broker's secure listeners, generated once per data dir.

One user (`streamlearn`) with a random password, known to the SASL_SSL listener both as a PLAIN
user (JAAS config) and as a SCRAM-SHA-256/512 user (created when the storage is formatted), and
the certificates of `certs.py` for TLS and mutual TLS.
"""

from __future__ import annotations

import os
import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path

from streamlearn.kafka.local.certs import CertFiles, generate_certs

USER = "streamlearn"
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
SASL_MECHANISMS = ("PLAIN", *SCRAM_MECHANISMS)


@dataclass(frozen=True)
class Credentials:
    """Paths and names a client of the secure listeners uses; the password stays in its file."""

    user: str
    password_file: Path
    ca_file: Path
    client_cert: Path
    client_key: Path

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def env(self, sasl_ssl_bootstrap: str, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
        """The `STREAMLEARN_*` variables that point streamlearn's commands at the SASL_SSL
        listener as this user."""
        return {
            "STREAMLEARN_BROKER": sasl_ssl_bootstrap,
            "STREAMLEARN_SECURITY_PROTOCOL": "SASL_SSL",
            "STREAMLEARN_SASL_MECHANISM": mechanism,
            "STREAMLEARN_SASL_USERNAME": self.user,
            "STREAMLEARN_SASL_PASSWORD_FILE": str(self.password_file),
            "STREAMLEARN_SSL_CAFILE": str(self.ca_file),
        }


def _new_password() -> str:
    """Letters and digits only: safe inside JAAS quotes and the storage tool's SCRAM syntax."""
    return secrets.token_hex(16)


def ensure_credentials(directory: Path) -> Credentials:
    """The credentials kept in `directory`, generating the certificates and password the first
    time (a restart must keep them: the SCRAM user was written at format time)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = CertFiles.in_dir(directory)
    if not files.exist():
        files = generate_certs(directory)
    password_file = directory / "password"
    if not password_file.exists():
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(_new_password() + "\n")
    return Credentials(USER, password_file, files.ca, files.client_cert, files.client_key)


def plain_jaas(user: str, password: str) -> str:
    """The SASL/PLAIN server login module that accepts exactly `user` with `password`."""
    return (
        "org.apache.kafka.common.security.plain.PlainLoginModule required"
        f' username="{user}" password="{password}" user_{user}="{password}";'
    )


def scram_args(user: str, password: str) -> list[str]:
    """`kafka-storage format` arguments that create the SCRAM user at format time (KRaft 3.5+)."""
    args = []
    for mechanism in SCRAM_MECHANISMS:
        args += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
    return args


def write_env_file(path: Path, env: dict[str, str]) -> Path:
    """A file a shell can `source` to export `env` (no secrets in it: the password is a path)."""
    lines = ["# source this file to point streamlearn at the local broker's SASL_SSL listener"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    path.write_text("\n".join(lines) + "\n")
    return path
