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
from aiokafka.errors import KafkaError as ClientKafkaError
from rich.progress import Progress

from streamlearn.commands.progress import event_progress
from streamlearn.errors import KafkaError
from streamlearn.kafka.outage import DEFAULT_BROKER_TIMEOUT, Outage, pace_metadata
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
    broker_timeout: float = DEFAULT_BROKER_TIMEOUT,
) -> ProduceReport:
    """Send `events` in order, paced at `rate` events/s; `total` sizes the progress bar.

    Pass `progress` to draw inside a display of your own (the demo's live view).

    SIGINT and SIGTERM stop it between two events; what was sent is flushed and reported
    (while the broker is away, at once: nothing can be flushed). A broker gone for
    `broker_timeout` seconds is one `KafkaError`, with the client libraries' connection errors
    held back meanwhile (streamlearn/kafka/outage.py).
    """
    report = ProduceReport()
    stop = asyncio.Event()
    outage = Outage(bootstrap, announce=False, security=security)
    sending: asyncio.Future | None = None

    def on_signal() -> None:
        stop.set()
        if outage.since is not None and sending is not None:  # stuck on a broker gone away
            sending.cancel()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    # acks=all: an event counts as sent once every in-sync replica has it (README, Running on
    # a real cluster); on one broker it costs nothing more than acks=1. aiokafka's own timeout
    # comes after --broker-timeout, so the outage is what the user reads about.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, acks="all",
        request_timeout_ms=int((broker_timeout + 15) * 1000), **security.client_kwargs(),
    )  # fmt: skip
    pace_metadata(producer.client)
    failures: list[BaseException] = []
    stamps = Stamps()

    async def send_all() -> None:
        await producer.start()
        start = time.monotonic()
        nonlocal progress
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

    gone = False
    try:
        with outage.attached():
            try:
                sending = asyncio.ensure_future(
                    outage.guard(
                        send_all(),
                        broker_timeout,
                        lambda: f"stopped after {report.sent} events, the last may be undelivered",
                    )
                )
                await sending
            except asyncio.CancelledError:
                if not stop.is_set():
                    raise
                report.interrupted = gone = True
            except KafkaError:
                gone = True
                raise
            except ClientKafkaError as error:
                gone = True
                raise KafkaError(
                    f"sending to {bootstrap} failed after {report.sent} events: {error!r}"
                ) from None
            finally:
                if gone:  # what is buffered cannot be delivered: do not wait for it
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(producer.stop(), 1.0)
                else:
                    await producer.stop()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if failures:
        raise KafkaError(f"{len(failures)} events were not delivered: {failures[0]!r}")
    return report
