"""`streamlearn produce`: send a file's rows to Kafka as observation and label events.

Keys are placed by aiokafka's default partitioner (murmur2), the same hash the worker checks,
so each key's events land on the partition that holds its state.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer
from rich.progress import Progress

from streamlearn.commands.progress import event_progress
from streamlearn.errors import KafkaError
from streamlearn.kafka.security import PLAINTEXT, Security
from streamlearn.settings import Topics
from streamlearn.source import Event


class Stamps:
    """Record timestamps (ms) that never repeat nor go back, so that a worker merging the
    observations and labels topics by timestamp (learning/merge.py) sees the order in which
    they were sent; equal milliseconds would leave it to put the observations first.

        >>> stamps = Stamps(now=lambda: 5.0)
        >>> stamps.next(), stamps.next()
        (5000, 5001)
    """

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.last = 0

    def next(self) -> int:
        self.last = max(int(self.now() * 1000), self.last + 1)
        return self.last


@dataclass
class ProduceReport:
    observations: int = 0
    labels: int = 0
    interrupted: bool = False

    @property
    def sent(self) -> int:
        return self.observations + self.labels


async def produce_events(
    bootstrap: str,
    topics: Topics,
    events: Iterable[Event],
    rate: float | None = None,
    total: int | None = None,
    progress: Progress | None = None,
    *,
    security: Security = PLAINTEXT,
) -> ProduceReport:
    """Send `events` in order, paced at `rate` events/s; `total` sizes the progress bar.

    Pass `progress` to draw inside a display of your own (the demo's live view).

    SIGINT and SIGTERM stop it between two events; what was sent is flushed and reported.
    """
    report = ProduceReport()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # acks=all: an event counts as sent once every in-sync replica has it (README, Running on
    # a real cluster); on one broker it costs nothing more than acks=1.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, acks="all", **security.client_kwargs()
    )
    failures: list[BaseException] = []
    stamps = Stamps()
    try:
        await producer.start()
        start = time.monotonic()
        own_display = progress is None
        progress = progress or event_progress()
        with progress if own_display else contextlib.nullcontext():
            task = progress.add_task("producing", total=total)
            for event in events:
                if stop.is_set():
                    report.interrupted = True
                    break
                if event.kind == "observation":
                    report.observations += 1
                    topic = topics.observations
                else:
                    report.labels += 1
                    topic = topics.labels
                future = await producer.send(
                    topic,
                    key=event.key.encode(),
                    value=orjson.dumps(event.value),
                    timestamp_ms=stamps.next(),
                )
                future.add_done_callback(lambda f: f.exception() and failures.append(f.exception()))
                if rate:
                    delay = start + report.sent / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                progress.advance(task)
            await producer.flush()
    finally:
        await producer.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if failures:
        raise KafkaError(f"{len(failures)} events were not delivered: {failures[0]!r}")
    return report
