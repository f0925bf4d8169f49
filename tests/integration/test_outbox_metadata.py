"""The producer keeps the metadata of every topic the outbox writes to.

aiokafka's client asks the brokers for every topic while it tracks none, and only for the topics
it tracks once it tracks one; each answer replaces the whole partition map. A topic it found in a
full answer is never tracked (`_wait_on_metadata` returns early), so as soon as another topic is
tracked (one created after the producer started: the changelog, in a fresh worker) the next
refresh drops the first one. A batch already queued for it then waits for a leader that no
refresh brings back, until the producer's request timeout (20 minutes with Faust's settings):
in the broker-failover test the refreshes after the kill dropped the predictions topic, the
checkpoint waited for its deliveries and nothing was ever committed.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer, TopicPartition

from streamlearn.kafka.broker import ensure_topics
from streamlearn.worker.outbox import Outbox


async def test_a_refresh_after_a_new_topic_keeps_the_topics_written_before(kafka_bootstrap, unique):
    known, created_later = unique("known"), unique("later")
    await ensure_topics(kafka_bootstrap, {known: 2})
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        # A refresh while it tracks no topic fetches them all, as Faust's producer has them
        # when the intake starts: `known` is in the metadata, and not tracked.
        await producer.client.force_metadata_update()
        outbox = Outbox(producer)
        assert await outbox.partition_count(known) == 2
        outbox.add(known, 1, b"k", b"before")
        await outbox.flush()
        await asyncio.gather(*outbox.sent)

        await ensure_topics(kafka_bootstrap, {created_later: 1})  # unknown to the producer
        outbox.add(created_later, 0, b"k", b"v")
        await outbox.flush()
        await asyncio.gather(*outbox.sent)

        # A refresh, as a broker going away starts: a batch for `known` queued before it must
        # still find its leader after it (aiokafka sends a batch only to a known leader).
        await producer.client.force_metadata_update()
        assert producer.client.cluster.leader_for_partition(TopicPartition(known, 1)) is not None
    finally:
        await producer.stop()
