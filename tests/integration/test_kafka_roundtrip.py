"""Records go through the real broker: keys, values, partitions, and committed group offsets."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamlearn.errors import KafkaError
from streamlearn.kafka.broker import ensure_topics, partition_counts


async def _consume(consumer: AIOKafkaConsumer, count: int, timeout: float = 30.0) -> list:
    """Read exactly `count` records, failing if they do not all arrive within `timeout`."""
    records: list = []

    async def read() -> None:
        while len(records) < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=count - len(records))
            for partition_records in batch.values():
                records.extend(partition_records)

    await asyncio.wait_for(read(), timeout)
    return records


async def test_keyed_records_round_trip_across_partitions(kafka_bootstrap, unique):
    topic = unique("roundtrip")
    await ensure_topics(kafka_bootstrap, {topic: 4})
    assert (await partition_counts(kafka_bootstrap, [topic])) == {topic: 4}

    sent = {(f"key-{i % 10}".encode(), f'{{"n": {i}}}'.encode()) for i in range(60)}
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for key, value in sorted(sent):
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records = await _consume(consumer, len(sent))
    finally:
        await consumer.stop()
    assert {(r.key, r.value) for r in records} == sent
    partitions_of_key: dict[bytes, set[int]] = {}
    for record in records:
        partitions_of_key.setdefault(record.key, set()).add(record.partition)
    assert all(len(p) == 1 for p in partitions_of_key.values())  # a key stays on one partition
    assert len({r.partition for r in records}) > 1  # and the keys spread over partitions


async def test_consumer_group_resumes_from_committed_offset(kafka_bootstrap, unique):
    topic, group = unique("resume"), unique("group")
    await ensure_topics(kafka_bootstrap, {topic: 1})
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(10):
            await producer.send(topic, key=b"k", value=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            group_id=group,
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )

    first = consumer()
    await first.start()
    try:
        head = await _consume(first, 4)
        head = head[:4]
        await first.commit({TopicPartition(topic, 0): head[-1].offset + 1})
    finally:
        await first.stop()
    assert [r.value for r in head] == [b"0", b"1", b"2", b"3"]

    second = consumer()
    await second.start()
    try:
        rest = await _consume(second, 6)
    finally:
        await second.stop()
    assert [r.value for r in rest] == [str(i).encode() for i in range(4, 10)]


async def test_a_topic_the_broker_refuses_to_create_is_an_error_naming_why(kafka_bootstrap, unique):
    """aiokafka returns a refusal in the response instead of raising it: it must not pass."""
    good, bad = unique("fine"), unique("no/slash")
    with pytest.raises(KafkaError, match=f"refused to create topic '{bad}'"):
        await ensure_topics(kafka_bootstrap, {good: 1, bad: 1})
