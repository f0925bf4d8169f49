"""Kafka 4.x beside the default 3.9.1: it starts from its own jars and serves aiokafka."""

from __future__ import annotations

import asyncio

from streamlearn.kafka.local import LocalKafka, free_port
from tests.conftest import assert_one_line_error, run_cli
from tests.integration.roundtrip import round_trip


async def test_kafka_4_starts_quietly_and_round_trips_a_record(tmp_path, unique):
    broker = LocalKafka(port=free_port(), data_dir=tmp_path / "kafka4", kafka_version="4.1.1")
    try:
        await asyncio.to_thread(broker.start)
        value = unique("v").encode()
        assert await round_trip(broker.bootstrap, unique("k4"), value) == value
        log = broker.log_path.read_text()
        assert "metadata.version to 4.1-IV1" in log  # the broker that answered is the 4.x one
        assert " DEBUG " not in log and " TRACE " not in log
    finally:
        broker.stop()
    assert broker.console_path.read_text() == ""  # everything went to server.log via log4j2


def test_an_unknown_kafka_version_is_one_line(tmp_path):
    ran = run_cli("kafka", "start", "--kafka-version", "2.8.0", "--data-dir", str(tmp_path))
    assert_one_line_error(ran)
    assert "'3.9.1', '4.1.1'" in ran.stderr
    ran = run_cli(
        "kafka", "start", "--data-dir", str(tmp_path), env={"STREAMLEARN_KAFKA_VERSION": "9"}
    )
    assert_one_line_error(ran)
