"""Which library records an outage holds back, and the lines it writes instead
(streamlearn/kafka/outage.py); the integration test stops a real broker."""

from __future__ import annotations

import logging

import pytest
from aiokafka.errors import KafkaConnectionError

from streamlearn.kafka.local import free_port
from streamlearn.kafka.outage import Outage, unreachable


def record(name: str, message: str, *args: object, level: int = logging.ERROR, exc=None):
    info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord(name, level, __file__, 1, message, args, info)


FETCHER, COORDINATOR, SENDER = (
    "aiokafka.consumer.fetcher", "aiokafka.consumer.group_coordinator", "aiokafka.producer.sender"
)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "message", "kind"),
    [
        ("aiokafka", "Unable connect to node with id 1: [Errno 111] Connect call failed", "gone"),
        ("aiokafka", "Unable to update metadata from [1]", "gone"),
        (FETCHER, "Failed fetch messages from 1: NodeNotReadyError: not ready", "gone"),
        (COORDINATOR, "Marking the coordinator dead (node 1)for group g.", "follows"),
        (
            SENDER,
            "Got error produce response, retrying. Error: NotLeaderForPartitionError",
            "follows",
        ),
        (SENDER, "Unexpected error in sender routine", None),
        ("faust.transport.consumer", "Crashed reason=ValueError('x')", None),
        ("streamlearn", "Unable to update metadata from [1]", None),  # ours: never held
        ("aiokafkax", "Unable connect to node", None),  # another library
    ],
)
def test_only_library_records_about_an_unreachable_broker_are_recognised(name, message, kind):
    assert unreachable(record(name, message)) == kind


def test_an_exception_of_a_lost_connection_is_recognised_whatever_the_message():
    error = KafkaConnectionError("Connection at 127.0.0.1:9092 closed")
    assert unreachable(record("faust.transport.drivers.aiokafka", "boom", exc=error)) == "gone"


async def test_an_outage_is_one_line_then_silence_and_other_errors_pass(caplog):
    now = [100.0]
    outage = Outage(f"127.0.0.1:{free_port()}", clock=lambda: now[0])  # nothing listens there
    caplog.set_level(logging.WARNING, logger="streamlearn")
    follows = record(COORDINATOR, "Marking the coordinator dead")
    assert outage.filter(follows)  # nothing seen gone yet: it passes (a rebalance logs it too)
    gone = record("aiokafka", "Unable connect to node with id %s: %s", 1, "[Errno 111] refused")
    assert not outage.filter(gone)
    for _ in range(1000):
        assert not outage.filter(record("aiokafka", "Unable to update metadata from %s", [1]))
    assert not outage.filter(record(COORDINATOR, "Heartbeat failed"))
    other = record(SENDER, "Unexpected error in sender routine")
    assert outage.filter(other)  # not about the broker being away: never held
    await outage.check()  # the probe finds no broker: the outage is said, once
    now[0] += 12.0
    await outage.check()
    assert outage.down_for() == 12.0 and outage.held == 1002
    now[0] += 30.0
    await outage.check()  # the reminder
    lines = [r.getMessage() for r in caplog.records if r.name == "streamlearn"]
    assert len(lines) == 2, lines
    assert f"lost the Kafka broker at {outage.broker} ([Errno 111] refused)" in lines[0]
    assert "still unreachable after 42s" in lines[1] and "1002 library messages" in lines[1]


def test_a_command_holds_what_follows_from_an_outage_even_before_it_sees_one(caplog):
    outage = Outage("127.0.0.1:1", announce=False)
    retrying = "Got error produce response, retrying. Error: NotLeaderForPartitionError"
    assert not outage.filter(record(SENDER, retrying))
    assert not outage.filter(record("aiokafka", "Unable to update metadata from %s", [1]))
    assert not [r for r in caplog.records if r.name == "streamlearn"]
