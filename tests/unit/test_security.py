"""Security settings: what each protocol hands the clients, and the mistakes refused up front."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from streamlearn.commands.cli import worker
from streamlearn.commands.options import security_from
from streamlearn.errors import ConfigError
from streamlearn.kafka.security import PLAINTEXT, Security
from tests.conftest import assert_one_line_error, run_cli

CA = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")


def test_plaintext_hands_the_clients_nothing_but_the_protocol() -> None:
    assert PLAINTEXT.client_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert PLAINTEXT.faust_credentials() is None


def test_sasl_ssl_hands_every_client_the_user_the_mechanism_and_a_verifying_tls_context():
    security = Security("SASL_SSL", "SCRAM-SHA-256", "alice", "s3cret", ca_file=CA)
    kwargs = security.client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("alice", "s3cret")
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert kwargs["ssl_context"].check_hostname
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-256"


def test_ssl_gives_faust_tls_credentials_and_sasl_plaintext_no_tls() -> None:
    assert isinstance(Security("SSL", ca_file=CA).faust_credentials(), faust.SSLCredentials)
    kwargs = Security("SASL_PLAINTEXT", "PLAIN", "bob", "pw").client_kwargs()
    assert "ssl_context" not in kwargs and kwargs["sasl_mechanism"] == "PLAIN"


def test_the_password_never_shows_in_the_settings_repr() -> None:
    assert "s3cret" not in repr(Security("SASL_SSL", "PLAIN", "alice", "s3cret"))
    assert "s3cret" not in Security("SASL_SSL", "PLAIN", "alice", "s3cret").describe()


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"protocol": "SASL_SSL", "username": "alice"}, "needs --sasl-username and a password"),
        ({"protocol": "PLAINTEXT", "username": "a", "password": "b"}, "SASL user or password"),
        ({"protocol": "PLAINTEXT", "ca_file": CA}, "TLS files are set"),
        ({"protocol": "SSL", "cert_file": CA}, "go together"),
        ({"protocol": "SSL", "ca_file": Path("/nowhere/ca.pem")}, "does not exist"),
        ({"protocol": "KERBEROS"}, "unknown security protocol"),
        ({"protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "unknown SASL mechanism"),
    ],
)
def test_settings_that_cannot_work_are_refused_before_any_connection(kwargs, says) -> None:
    with pytest.raises(ConfigError, match=says):
        Security(**kwargs)


def test_a_child_process_given_env_gets_the_same_settings(monkeypatch, tmp_path) -> None:
    """The demo hands its worker the settings through `STREAMLEARN_*` variables."""
    key = tmp_path / "client.key"
    key.write_text("not parsed here")
    security = Security("SASL_SSL", "SCRAM-SHA-512", "alice", "s3cret", CA, CA, key)
    for name, value in security.env().items():
        monkeypatch.setenv(name, value)
    params = dict(worker.make_context("worker", []).params)
    assert security_from(params) == security
    assert not any(name.startswith(("sasl_", "ssl_", "security_")) for name in params)
    # A child given plain text inherits none of the parent's SASL or TLS settings.
    for name, value in PLAINTEXT.env().items():
        monkeypatch.setenv(name, value)
    assert security_from(dict(worker.make_context("worker", []).params)) == PLAINTEXT


def test_the_password_file_gives_its_first_line(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("STREAMLEARN_SASL_PASSWORD", raising=False)
    secret = tmp_path / "password"
    secret.write_text("from-the-file\nignored\n")
    args = ["--security-protocol", "sasl_ssl", "--sasl-username", "alice"]
    params = dict(
        worker.make_context("worker", [*args, "--sasl-password-file", str(secret)]).params
    )
    assert security_from(params).password == "from-the-file"


def test_a_password_flag_does_not_exist_so_it_cannot_show_in_ps() -> None:
    ran = run_cli("tail", "--sasl-password", "s3cret")
    assert_one_line_error(ran)
    assert "No such option" in ran.stderr


def test_sasl_without_a_password_is_one_line_before_any_broker_is_asked() -> None:
    ran = run_cli(
        "tail", "--broker", "127.0.0.1:1", "--security-protocol", "SASL_SSL",
        "--sasl-username", "alice", env={"STREAMLEARN_SASL_PASSWORD": ""},
    )  # fmt: skip
    assert_one_line_error(ran)
    assert "needs --sasl-username and a password" in ran.stderr
