"""How streamlearn's clients prove who they are to Kafka and encrypt what they send.

One `Security` value is built from the command line (flags and `STREAMLEARN_*` variables) and
handed to every client streamlearn opens: Faust's (`faust_credentials`) and aiokafka's
(`client_kwargs`). A password is never a flag: it comes from `STREAMLEARN_SASL_PASSWORD` or a file.

    >>> Security().describe()
    'PLAINTEXT'
    >>> Security("SASL_SSL", "SCRAM-SHA-512", "alice", "s3cret").describe()
    'SASL_SSL, SCRAM-SHA-512 as alice'
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamlearn.errors import ConfigError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class Security:
    """A Kafka security protocol with what it needs: SASL user and password, TLS files."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None  # trusts the brokers' certificates (else the system's CAs)
    cert_file: Path | None = None  # the client's certificate, for mutual TLS
    key_file: Path | None = None  # the client certificate's private key

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(
                f"unknown security protocol {self.protocol!r}; use one of {', '.join(PROTOCOLS)}"
            )
        if self.sasl_mechanism not in MECHANISMS:
            raise ConfigError(
                f"unknown SASL mechanism {self.sasl_mechanism!r};"
                f" use one of {', '.join(MECHANISMS)}"
            )
        if self.uses_sasl and not (self.username and self.password):
            raise ConfigError(
                f"{self.protocol} needs --sasl-username and a password"
                " (STREAMLEARN_SASL_PASSWORD or --sasl-password-file)"
            )
        if not self.uses_sasl and (self.username or self.password):
            raise ConfigError(
                f"a SASL user or password is set but the security protocol is {self.protocol};"
                " pass --security-protocol SASL_SSL (or SASL_PLAINTEXT)"
            )
        tls_files = (self.ca_file, self.cert_file, self.key_file)
        if not self.uses_tls and any(tls_files):
            raise ConfigError(
                f"TLS files are set but the security protocol is {self.protocol};"
                " pass --security-protocol SSL (or SASL_SSL)"
            )
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("--ssl-certfile and --ssl-keyfile go together (mutual TLS)")
        for path in tls_files:
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"TLS file {path} does not exist")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.protocol.endswith("SSL")

    def describe(self) -> str:
        """The protocol, and the SASL mechanism and user when there is one (never the password)."""
        if self.uses_sasl:
            return f"{self.protocol}, {self.sasl_mechanism} as {self.username}"
        if self.cert_file is not None:
            return f"{self.protocol} with client certificate {self.cert_file}"
        return self.protocol

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context that checks the broker's certificate and host name, or None."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        try:
            if self.cert_file is not None:
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (ssl.SSLError, ValueError) as error:
            raise ConfigError(
                f"cannot use client certificate {self.cert_file} with key {self.key_file}: {error}"
            ) from None
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """The keyword arguments every aiokafka client (producer, consumer, admin) takes."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            kwargs.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        return kwargs

    def env(self) -> dict[str, str]:
        """The `STREAMLEARN_*` variables that give a child command these settings, all of them
        (empty when unset, which the commands read as unset) so none is inherited from the
        parent's. The password goes in the environment, never in arguments, which `ps` shows."""
        values = {
            "SECURITY_PROTOCOL": self.protocol, "SASL_MECHANISM": self.sasl_mechanism,
            "SASL_USERNAME": self.username, "SASL_PASSWORD": self.password,
            "SASL_PASSWORD_FILE": None, "SSL_CAFILE": self.ca_file,
            "SSL_CERTFILE": self.cert_file, "SSL_KEYFILE": self.key_file,
        }  # fmt: skip
        return {f"STREAMLEARN_{name}": "" if v is None else str(v) for name, v in values.items()}

    def faust_credentials(self) -> Any:
        """The same settings as Faust's `broker_credentials` (None for PLAINTEXT)."""
        import faust  # here, so the learning core and the light commands need not import Faust

        if self.uses_sasl:
            return faust.SASLCredentials(
                username=self.username, password=self.password,
                ssl_context=self.ssl_context(), mechanism=self.sasl_mechanism,
            )  # fmt: skip
        if self.uses_tls:
            return faust.SSLCredentials(self.ssl_context())
        return None


PLAINTEXT = Security()
