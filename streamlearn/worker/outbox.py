"""The outbox: records to produce, gathered into one batch per partition and handed over whole.

A `send` through Faust and aiokafka costs ~15-80 µs per record: a coroutine, a future, the
producer's checks and a pure-Python murmur2 for the partition. The intake produces a prediction
for almost every record, and the checkpoint a changelog record per changed key, so that cost
was a large part of the hot path. Here a record is appended to an open aiokafka `BatchBuilder`
for its topic-partition (a few µs) and each batch is given to the producer once per processed
fetch (`flush`), closed so that it goes out at once, with one future per batch. The checkpoint
waits for those futures.

Every topic written to is tracked by the producer's client (`track`). aiokafka's client asks
for every topic while it tracks none and only for the tracked ones after that, and each answer
replaces its whole partition map; a topic it already knew from a full answer is never tracked
(`_wait_on_metadata` returns early). So once a topic created later, the changelog of a fresh
worker, was tracked, the next refresh dropped the predictions topic, and a batch still queued
for it, as when its leader's broker was just killed, waited for a leader no refresh brought
back: the checkpoint never got its acknowledgement and nothing was committed again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from streamlearn.kafka.partitioner import partition_for


class Outbox:
    """Open batches per topic-partition for one aiokafka producer; see the module docstring."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer  # aiokafka's AIOKafkaProducer
        self.open: dict[tuple[str, int], Any] = {}  # (topic, partition) -> BatchBuilder
        self.full: list[tuple[str, int, Any]] = []  # batches that filled up, still to hand over
        self.partitions: dict[str, int] = {}  # partition count of each topic produced to
        self.sent: list[asyncio.Future] = []  # one delivery per batch handed over
        self.last: dict[tuple[str, int], tuple[asyncio.Future, int]] = {}  # latest batch, size
        self.tracked: set[str] = set()  # topics the producer's client keeps in its metadata

    def track(self, topic: str) -> None:
        """Have the producer's client keep `topic` in every metadata refresh (module docstring);
        the first time, it refreshes in the background."""
        if topic not in self.tracked:
            self.producer.client.add_topic(topic)
            self.tracked.add(topic)

    async def partition_count(self, topic: str) -> int:
        """The number of partitions of `topic`, from the producer's metadata (fetched once)."""
        count = self.partitions.get(topic)
        if count is None:
            self.track(topic)
            count = self.partitions[topic] = len(
                await self.producer.client._wait_on_metadata(topic)
            )
        return count

    def add(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Append a record to its partition's open batch (None timestamp: now)."""
        headers = headers or []  # aiokafka's compiled builder takes a list only
        tp = (topic, partition)
        batch = self.open.get(tp)
        if batch is None:
            batch = self.open[tp] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=timestamp_ms, headers=headers) is None:
            self.full.append((topic, partition, batch))  # a full batch never takes one more
            batch = self.open[tp] = self.producer.create_batch()
            batch.append(key=key, value=value, timestamp=timestamp_ms, headers=headers)  # fits:
            # an empty batch takes any one record, as in Kafka's clients (the broker decides)

    def home(self, topic: str, key: bytes | None) -> int:
        """The partition of `key` in `topic` as the Java client would choose it (0 for none);
        `partition_count(topic)` must have been awaited once."""
        return 0 if key is None else partition_for(key, self.partitions[topic])

    async def flush(self) -> None:
        """Hand every batch to the producer (it sends them in the background)."""
        batches, self.full = self.full, []
        batches.extend((topic, partition, batch) for (topic, partition), batch in self.open.items())
        self.open.clear()
        for topic, partition, batch in batches:
            self.track(topic)
            batch.close()  # closed: sent at once, and nothing else is appended to it
            size = batch.record_count()
            future = await self.producer.send_batch(batch, topic, partition=partition)
            self.sent.append(future)
            self.last[(topic, partition)] = (future, size)

    def reached(self, topic: str, partition: int) -> int | None:
        """The offset of the last record delivered to `topic`/`partition`, once acknowledged."""
        last = self.last.get((topic, partition))
        if last is None:
            return None
        future, size = last
        return future.result().offset + size - 1

    def forget(self) -> None:
        """Drop the open batches and the deliveries awaited (after a checkpoint, or a failure)."""
        self.open.clear()
        self.full.clear()
        self.sent.clear()
        self.last.clear()
