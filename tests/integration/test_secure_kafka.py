"""The local broker's secure listeners, at the aiokafka level: the generated user over SASL_SSL
(PLAIN and SCRAM) and the generated client certificate over SSL get in; a wrong password and a
missing client certificate do not."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed
from aiokafka.helpers import create_ssl_context

from tests.integration.roundtrip import round_trip


def sasl_ssl(broker, mechanism: str, password: str | None = None) -> dict:
    credentials = broker.credentials
    return {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": credentials.user,
        "sasl_plain_password": credentials.password if password is None else password,
        "ssl_context": create_ssl_context(cafile=str(credentials.ca_file)),
    }


def mutual_tls(broker, with_client_cert: bool = True) -> dict:
    credentials = broker.credentials
    files = {"certfile": str(credentials.client_cert), "keyfile": str(credentials.client_key)}
    context = create_ssl_context(
        cafile=str(credentials.ca_file), **(files if with_client_cert else {})
    )
    return {"security_protocol": "SSL", "ssl_context": context}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_the_generated_user_round_trips_a_record_over_sasl_ssl(
    secure_kafka, unique, mechanism
):
    bootstrap = secure_kafka.listeners["SASL_SSL"]
    value = unique("v").encode()
    assert (
        await round_trip(bootstrap, unique("sasl"), value, **sasl_ssl(secure_kafka, mechanism))
        == value
    )


async def test_the_generated_client_certificate_round_trips_a_record_over_ssl(secure_kafka, unique):
    bootstrap = secure_kafka.listeners["SSL"]
    value = unique("v").encode()
    assert await round_trip(bootstrap, unique("mtls"), value, **mutual_tls(secure_kafka)) == value


def host_port(address: str) -> tuple[str, int]:
    host, port = address.split(",")[0].rsplit(":", 1)
    return host, int(port)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
async def test_a_wrong_password_is_refused(secure_kafka, mechanism):
    bootstrap = secure_kafka.listeners["SASL_SSL"]
    wrong = sasl_ssl(secure_kafka, mechanism, password="not-the-password")
    # One connection says why: the broker refused the credentials.
    with pytest.raises(SaslAuthenticationFailed):
        await create_conn(*host_port(bootstrap), request_timeout_ms=5000, **wrong)
    # A client's start turns that into "cannot bootstrap", within seconds.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000, **wrong)
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    # And the right password on the same listener still works (the refusal was the password's).
    right = sasl_ssl(secure_kafka, mechanism)
    conn = await create_conn(*host_port(bootstrap), request_timeout_ms=5000, **right)
    conn.close()


async def test_ssl_without_a_client_certificate_is_refused(secure_kafka):
    bootstrap = secure_kafka.listeners["SSL"]
    anonymous = mutual_tls(secure_kafka, with_client_cert=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000, **anonymous)
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    # The same context with the client certificate gets in: the certificate made the difference.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, request_timeout_ms=5000, **mutual_tls(secure_kafka)
    )
    await producer.start()
    await producer.stop()


async def test_the_plaintext_listener_stays_open(secure_kafka, unique):
    value = unique("v").encode()
    assert await round_trip(secure_kafka.bootstrap, unique("plain"), value) == value


def test_the_sourced_env_file_takes_streamlearn_through_sasl_ssl(secure_kafka, unique):
    topic, marker = unique("env"), unique("m")
    asyncio.run(round_trip(secure_kafka.bootstrap, topic, json.dumps({"m": marker}).encode()))
    env_file = secure_kafka.env_path
    assert "SASL_SSL" in env_file.read_text()
    script = f". {env_file} && exec {sys.executable} -m streamlearn tail {topic} -n 1"
    ran = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")},
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert marker in ran.stdout
