"""Latency at a steady load: the time from producing an observation to its prediction arriving.

A worker is started on new, empty topics first; then the workload's first events are sent at a
fixed pace (`rate_pps` pairs per second, so twice that in events, labels interleaved as in the
workload) while a consumer reads the predictions topic. Each observation's send time is kept by
`(key, id)`; its prediction's arrival minus that time is one sample. Both clocks are this
process's `time.perf_counter`.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.cluster import Encoded, WorkerPool, fresh_topics, proc_status, producer, security
from bench.e2e import Target
from streamlearn.commands.produce import Stamps
from streamlearn.settings import Topics
from streamlearn.worker.outbox import Outbox

TICK = 0.002  # s: the records due within it are sent together, as a producer's linger would


@dataclass(frozen=True)
class Latency:
    """Percentiles of observation-to-prediction time, in milliseconds, at `rate_pps`."""

    rate_pps: float
    samples: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rss_idle_bytes: int  # the worker's RSS when ready, before any event: a baseline


def measure(
    bootstrap: str, model: str, partitions: int, records: Encoded, rate_pps: float, root: Path
) -> Latency:
    """Start a worker on empty topics, send `records` at `rate_pps`, time every prediction."""
    topics = fresh_topics(bootstrap, partitions)
    with WorkerPool(bootstrap, topics, root, model, partitions) as pool:
        (worker,) = pool.add(1)
        pool.start([worker])
        idle = proc_status(worker.process.pid, "VmRSS")
        target = Target(bootstrap, topics, model, partitions)
        waits = asyncio.run(_paced(target, records, rate_pps))
    cuts = statistics.quantiles(waits, n=100, method="inclusive")
    return Latency(rate_pps, len(waits), cuts[49], cuts[94], cuts[98], idle)


async def _paced(target: Target, records: Encoded, rate_pps: float) -> list[float]:
    """Send at the pace and collect one latency sample (ms) per observation."""
    sent: dict[tuple[bytes, int], float] = {}
    expected = sum(1 for is_observation, _, _ in records if is_observation)
    consumer = await predictions_consumer(target)
    reading = asyncio.create_task(_arrivals(consumer, sent, expected))
    try:
        await send_paced(target.bootstrap, target.topics, records, rate_pps, sent)
        return await asyncio.wait_for(reading, timeout=30 + expected / rate_pps)
    finally:
        reading.cancel()
        await consumer.stop()


async def predictions_consumer(target: Target) -> AIOKafkaConsumer:
    """A consumer assigned every partition of the (empty) predictions topic from offset 0."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=target.bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        **security().client_kwargs(),
    )
    await consumer.start()
    consumer.assign(
        [TopicPartition(target.topics.predictions, p) for p in range(target.partitions)]
    )
    for partition in consumer.assignment():
        consumer.seek(partition, 0)
    return consumer


async def send_paced(
    bootstrap: str,
    topics: Topics,
    records: Encoded,
    rate_pps: float,
    sent: dict[tuple[bytes, int], float],
) -> None:
    """Send each record at its slot (two events per pair), noting observations' send times.

    The records due are sent together every `TICK`, through the worker's own `Outbox` (one
    compiled batch per partition): a send awaited per record cost this process most of a core
    at a few thousand pairs per second, a core the worker and broker share on a small machine.
    Records are stamped with increasing milliseconds, as `streamlearn produce` stamps them, so
    the worker's merge of the two topics applies them in the order they were sent.
    """
    client = producer(bootstrap, linger_ms=0)
    await client.start()
    outbox = Outbox(client)
    for topic in (topics.observations, topics.labels):
        await outbox.partition_count(topic)
    ids = [
        orjson.loads(value)["id"] if is_observation else 0 for is_observation, _, value in records
    ]
    stamps = Stamps()
    try:
        interval = 1 / (2 * rate_pps)
        started = time.perf_counter()
        done = 0
        while done < len(records):
            now = time.perf_counter()
            due = min(len(records), int((now - started) / interval) + 1)
            for index in range(done, due):
                is_observation, key, value = records[index]
                if is_observation:
                    sent[key, ids[index]] = now
                topic = topics.observations if is_observation else topics.labels
                outbox.add(topic, outbox.home(topic, key), key, value, stamps.next())
            done = due
            await outbox.flush()
            outbox.sent.clear()  # delivery is waited for once, at the end
            await asyncio.sleep(max(TICK, started + done * interval - time.perf_counter()))
        await client.flush()
    finally:
        await client.stop()


async def _arrivals(
    consumer: AIOKafkaConsumer, sent: dict[tuple[bytes, int], float], expected: int
) -> list[float]:
    """Milliseconds from send to arrival of each prediction, until `expected` have arrived."""
    waits: list[float] = []
    while len(waits) < expected:
        batch = await consumer.getmany(timeout_ms=100)
        arrived = time.perf_counter()
        for records in batch.values():
            for record in records:
                prediction = orjson.loads(record.value)
                waits.append((arrived - sent[record.key, prediction["id"]]) * 1000)
    return waits
