"""aiokafka hands a fetch waiting on an empty set of partitions the records of every partition;
the worker's transport (worker/transport.py) hands it only those of partitions still active.

The fetcher is asked exactly as Faust's aiokafka driver asks it, with Faust's live set of active
partitions, which every rebalance empties by pausing them all.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamlearn.kafka.broker import ensure_topics
from streamlearn.testing import produce_on_each_partition, until
from streamlearn.worker.transport import ActivePartitions


async def test_a_fetch_waiting_on_paused_partitions_takes_none_of_their_records(
    kafka_bootstrap, unique
):
    topic = unique("paused")
    await ensure_topics(kafka_bootstrap, {topic: 2})
    first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)
    await produce_on_each_partition(kafka_bootstrap, topic, 2, 5)

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([first, second])
        fetcher = consumer._fetcher
        active: set = set()  # Faust's set while a rebalance has paused every partition

        await until(lambda: set(fetcher._records) == {first, second}, 10)  # both fetched
        records = await fetcher.fetched_records(ActivePartitions(active), timeout=0)
        assert records == {}
        assert [await consumer.position(tp) for tp in (first, second)] == [0, 0]

        active.add(first)  # Faust resumes one partition, the same set object
        records = await fetcher.fetched_records(ActivePartitions(active), timeout=10)
        offsets = {tp: [r.offset for r in rs] for tp, rs in records.items()}
        assert offsets == {first: [0, 1, 2, 3, 4]}
        assert await consumer.position(second) == 0  # still there for when it resumes

        active.clear()  # the upstream behaviour the transport works around
        records = await asyncio.wait_for(fetcher.fetched_records(active, timeout=10), 10)
        assert list(records) == [second] and await consumer.position(second) == 5
    finally:
        await consumer.stop()
