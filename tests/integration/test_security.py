"""streamlearn through a secured broker: the River oracle over SASL_SSL with SCRAM and over
mutual TLS, and every way of being refused (wrong password, untrusted or missing certificate,
protocol mismatch) as one error line within seconds."""

from __future__ import annotations

import time

import pytest

from streamlearn.kafka.broker import ensure_topics
from streamlearn.kafka.security import Security
from streamlearn.learning.models import load_factory
from streamlearn.settings import Topics
from streamlearn.testing import TopicReader, unique
from tests.conftest import assert_one_line_error, run_cli
from tests.integration.conftest import (
    PARTITIONS,
    Workers,
    predictions_by_key,
    rounds_of_predict_then_learn,
)
from tests.oracle import chick_rows, per_key_predictions


def scram(kafka) -> Security:
    """The generated user over the SASL_SSL listener, with SCRAM-SHA-512."""
    c = kafka.credentials
    return Security("SASL_SSL", "SCRAM-SHA-512", c.user, c.password, ca_file=c.ca_file)


def mutual_tls(kafka) -> Security:
    """The generated client certificate over the SSL listener, which requires one."""
    c = kafka.credentials
    return Security("SSL", ca_file=c.ca_file, cert_file=c.client_cert, key_file=c.client_key)


@pytest.mark.parametrize(("listener", "security_of"), [("SASL_SSL", scram), ("SSL", mutual_tls)])
async def test_predictions_equal_river_progressive_validation_through_a_secured_listener(
    secure_kafka, tmp_path, listener, security_of
):
    bootstrap, security = secure_kafka.listeners[listener], security_of(secure_kafka)
    topics = Topics.with_prefix(unique("secure") + ".")
    await ensure_topics(bootstrap, dict.fromkeys(topics.names(), PARTITIONS), security=security)
    workers = Workers(bootstrap, topics, tmp_path, unique("app"), PARTITIONS, security)
    rows = chick_rows()[:600]
    try:
        worker = workers.start()
        async with TopicReader(bootstrap, topics.predictions, security=security) as reader:
            await rounds_of_predict_then_learn(
                bootstrap, topics, rows, worker, reader, security=security
            )
            values = reader.values()
    finally:
        workers.stop_all()
    expected = per_key_predictions(rows, load_factory("linear-regression"))
    got = predictions_by_key(values)
    assert got.keys() == expected.keys()
    for key, predictions in expected.items():
        assert got[key] == pytest.approx(predictions, abs=1e-9), key
    assert "password" not in worker.args  # the worker got its secret from the environment
    assert security.password is None or security.password not in " ".join(worker.args)


def refused(kafka, command: list[str], env: dict[str, str]) -> tuple[str, float]:
    """Run a streamlearn command that must be refused: its one error line and its duration."""
    started = time.monotonic()
    ran = run_cli(*command, env={"STREAMLEARN_SASL_PASSWORD": "", **env}, timeout=60)
    took = time.monotonic() - started
    assert_one_line_error(ran)
    return ran.stderr.strip(), took


def secure_env(kafka, listener: str, **variables: str) -> dict[str, str]:
    c = kafka.credentials
    base = {
        "STREAMLEARN_BROKER": kafka.listeners[listener],
        "STREAMLEARN_SECURITY_PROTOCOL": listener,
        "STREAMLEARN_SSL_CAFILE": str(c.ca_file),
    }
    if listener == "SASL_SSL":
        base["STREAMLEARN_SASL_MECHANISM"] = "SCRAM-SHA-256"
        base["STREAMLEARN_SASL_USERNAME"] = c.user
        base["STREAMLEARN_SASL_PASSWORD"] = c.password
    return {**base, **variables}


@pytest.mark.parametrize("command", [["worker"], ["tail"]])
def test_a_wrong_password_is_one_line_naming_it_within_seconds(secure_kafka, tmp_path, command):
    args = [*command, "--data-dir", str(tmp_path / "w")] if command == ["worker"] else command
    env = secure_env(secure_kafka, "SASL_SSL", STREAMLEARN_SASL_PASSWORD="not-the-password")
    line, took = refused(secure_kafka, args, env)
    assert "wrong user or password" in line and secure_kafka.credentials.user in line
    assert "not-the-password" not in line
    assert took < 15


@pytest.mark.parametrize(
    ("listener", "change", "says"),
    [
        ("SASL_SSL", {"STREAMLEARN_SSL_CAFILE": ""}, "not trusted"),  # the system CAs: no
        ("SSL", {}, "client certificate"),  # the listener requires one, none given
        ("SASL_SSL", {"STREAMLEARN_SECURITY_PROTOCOL": "SSL", "STREAMLEARN_SASL_USERNAME": ""},
         "may want SASL"),  # TLS works, then the listener waits for SASL
        ("PLAINTEXT", {"STREAMLEARN_SECURITY_PROTOCOL": "SSL"}, "TLS handshake"),
    ],
)  # fmt: skip
def test_a_certificate_or_protocol_that_cannot_work_is_one_line_within_seconds(
    secure_kafka, listener, change, says
):
    env = secure_env(secure_kafka, "SASL_SSL" if listener == "SASL_SSL" else "SSL", **change)
    env["STREAMLEARN_BROKER"] = secure_kafka.listeners[listener]
    if env["STREAMLEARN_SECURITY_PROTOCOL"] == "SSL":
        env = {k: v for k, v in env.items() if not k.startswith("STREAMLEARN_SASL")}
        env["STREAMLEARN_SASL_PASSWORD"] = ""
    line, took = refused(secure_kafka, ["tail"], env)
    assert says in line, line
    assert took < 15
