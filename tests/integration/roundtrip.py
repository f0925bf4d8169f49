"""One record through a real broker with any aiokafka connection settings: create a topic,
produce with acks=all, read it back."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def create_topic(
    bootstrap: str, topic: str, replication: int = 1, partitions: int = 1, **client: Any
) -> None:
    """Create `topic`; `client` are aiokafka connection kwargs (security_protocol, …)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, replication)])
    finally:
        await admin.close()


async def send(bootstrap: str, topic: str, value: bytes, **client: Any) -> None:
    """Produce `value` with acks=all and wait for the broker's acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **client)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"k", partition=0)
    finally:
        await producer.stop()


async def read(
    bootstrap: str, topic: str, count: int, timeout: float = 30.0, **client: Any
) -> list[bytes]:
    """The first `count` values of partition 0 of `topic`, waiting up to `timeout`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
        fetch_max_wait_ms=100, **client,
    )  # fmt: skip
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        values: list[bytes] = []
        async with asyncio.timeout(timeout):
            while len(values) < count:
                batch = await consumer.getmany(timeout_ms=500)
                values += [record.value for records in batch.values() for record in records]
        return values
    finally:
        await consumer.stop()


async def round_trip(bootstrap: str, topic: str, value: bytes, **client: Any) -> bytes:
    """Create `topic`, send `value`, and return what is read back from it."""
    await create_topic(bootstrap, topic, **client)
    await send(bootstrap, topic, value, **client)
    return (await read(bootstrap, topic, 1, **client))[0]
