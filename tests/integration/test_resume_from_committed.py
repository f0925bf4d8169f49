"""After a rebalance, every input partition resumes at its committed offset, or its log start.

aiokafka's `seek_to_committed` leaves a partition with no commit where its fetcher was, and
Faust resumes partitions before its own seek, so a fetcher still past a failed commit delivers
first. Faust has by then dropped the records it fetched but had not processed, so without this
seek no worker ever processed them: the causes of issue 6's lost labels.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import RecordsToDelete

from streamlearn.kafka.broker import admin, ensure_topics
from streamlearn.testing import produce_on_each_partition
from streamlearn.worker.rebalance import resume_from_committed
from tests.integration.test_kafka_roundtrip import _consume


class FaustConsumerCalls:
    """The calls `resume_from_committed` makes on Faust's consumer, which hands them to aiokafka
    exactly so (faust.transport.drivers.aiokafka.AIOKafkaConsumerThread)."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer

    def assignment(self) -> set:
        return self.consumer.assignment()

    async def seek_to_committed(self) -> dict:
        return await self.consumer.seek_to_committed()

    async def earliest_offsets(self, *partitions: TopicPartition) -> dict:
        return await self.consumer.beginning_offsets(partitions)

    async def seek_wait(self, offsets: dict) -> None:
        for tp, offset in offsets.items():
            self.consumer.seek(tp, offset)
            await self.consumer.position(tp)


async def test_partitions_resume_at_their_commit_or_their_start(kafka_bootstrap, unique):
    topic = unique("resume")
    await ensure_topics(kafka_bootstrap, {topic: 2})
    uncommitted, committed = TopicPartition(topic, 0), TopicPartition(topic, 1)
    await produce_on_each_partition(kafka_bootstrap, topic, 2, 10)

    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=unique("group"),
        enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    try:
        consumer.assign([uncommitted, committed])
        await _consume(consumer, 20)  # fetched, as Faust had before the rebalance dropped them
        await consumer.commit({committed: 4})

        await consumer.seek_to_committed()  # what Faust does after every rebalance
        assert await consumer.position(uncommitted) == 10  # the upstream gap: records 0-9 skipped
        consumer.seek(committed, 10)  # where the fetcher is when its commit failed in a rebalance

        async with admin(kafka_bootstrap) as client:  # retention has removed 0's first records
            await client.delete_records({uncommitted: RecordsToDelete(before_offset=2)})

        resume = await resume_from_committed(FaustConsumerCalls(consumer), [topic, "other"])

        assert resume == {uncommitted: 2, committed: 4}  # the log start, the commit
        assert await consumer.position(uncommitted) == 2
        assert await consumer.position(committed) == 4
        again = await _consume(consumer, 14)  # 8 from the log start of 0, 6 after 1's commit
        assert sorted((r.partition, r.offset) for r in again) == [
            *((0, o) for o in range(2, 10)),
            *((1, o) for o in range(4, 10)),
        ]
    finally:
        await consumer.stop()


async def test_a_worker_without_partitions_has_nothing_to_seek(kafka_bootstrap, unique):
    """More workers than partitions leaves one idle; aiokafka's seek_to_committed asserts then."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=unique("group"))
    await consumer.start()
    try:
        assert await resume_from_committed(FaustConsumerCalls(consumer), ["any"]) == {}
    finally:
        await consumer.stop()
