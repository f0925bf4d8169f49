"""`streamlearn tail`: print a topic's records as JSON lines, like `tail` for a Kafka topic.

Without `--from-beginning` it prints the last N records over all partitions, in time order; with
it, every record from the start (or the first N with `-n`). `--follow` then keeps printing the
records written after `tail` started, until Ctrl-C or SIGTERM. Reads with a plain consumer
(manual assignment, no group, no commits), so it never disturbs the workers.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any

import click
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError as ClientKafkaError
from aiokafka.structs import ConsumerRecord

from streamlearn.commands.options import (
    broker_timeout_option,
    kafka_options,
    security_from,
    topic_options,
    topics_from,
)
from streamlearn.errors import ConfigError, KafkaError
from streamlearn.kafka.broker import partition_counts, require_broker
from streamlearn.kafka.outage import Outage, pace_metadata
from streamlearn.kafka.security import Security

DEFAULT_LINES = 10

Offsets = dict[TopicPartition, int]


@click.command()
@click.argument("topic", required=False)
@kafka_options
@topic_options
@click.option(
    "-n",
    "--lines",
    type=click.IntRange(0),
    default=None,
    help=f"How many records to print [default: {DEFAULT_LINES}; all with --from-beginning].",
)
@click.option("--from-beginning", is_flag=True, help="Start from the first record, not the last.")
@click.option("-f", "--follow", is_flag=True, help="Then print new records until Ctrl-C.")
@broker_timeout_option
def tail(
    topic: str | None,
    broker: str,
    lines: int | None,
    from_beginning: bool,
    follow: bool,
    broker_timeout: float,
    **params: Any,
) -> None:
    """Print records of TOPIC as JSON lines (the predictions topic by default)."""
    security = security_from(params)
    topic = topic or topics_from(params).predictions
    if lines is None and not from_beginning:
        lines = DEFAULT_LINES
    try:
        work = _tail(broker, security, topic, lines, from_beginning, follow)
        interrupted = asyncio.run(_until_signal(_watched(broker, security, broker_timeout, work)))
    except BrokenPipeError:  # the reader went away (`| head -1`): that is not an error
        _silence_stdout()
        return
    except ClientKafkaError as error:
        raise KafkaError(f"reading topic {topic!r} from {broker} failed: {error!r}") from None
    if interrupted and not follow:  # Ctrl-C is how a follow ends, but it cuts a plain tail short
        raise KeyboardInterrupt


async def _until_signal(work: Coroutine[Any, Any, None]) -> bool:
    """Run `work` until it ends or SIGINT/SIGTERM cancels it; True if a signal stopped it."""
    task = asyncio.ensure_future(work)
    signalled: list[int] = []

    def stop(signum: int) -> None:
        signalled.append(signum)
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop, signum)
    try:
        await task
    except (asyncio.CancelledError, Exception):
        # aiokafka can turn a cancellation into a connection error: after a signal, both mean
        # "stopped by the user"
        if not signalled:
            raise
    return bool(signalled)


async def _watched(
    bootstrap: str, security: Security, timeout: float, work: Coroutine[Any, Any, None]
) -> None:
    """Run `work` with the client libraries' connection errors held back, until the broker
    has been gone for `timeout` seconds: then one `KafkaError` (streamlearn/kafka/outage.py)."""
    outage = Outage(bootstrap, announce=False, security=security)
    with outage.attached():
        await outage.guard(work, timeout, lambda: "stopped reading")


async def _tail(
    bootstrap: str,
    security: Security,
    topic: str,
    lines: int | None,
    from_beginning: bool,
    follow: bool,
) -> None:
    """Print the selected records of `topic`, then follow it if asked."""
    await require_broker(bootstrap, 5.0, security=security)
    counts = await partition_counts(bootstrap, [topic], security=security)
    if topic not in counts:
        raise ConfigError(f"topic {topic!r} does not exist on {bootstrap}")
    partitions = [TopicPartition(topic, p) for p in range(counts[topic])]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=200,
        **security.client_kwargs(),
    )
    pace_metadata(consumer._client)
    await consumer.start()
    try:
        consumer.assign(partitions)
        begins = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        if lines is None:  # --from-beginning, everything: stream it, batch by batch
            async for batch in _read(consumer, begins, ends):
                _write(batch)
        elif from_beginning:
            stops = {tp: min(begins[tp] + lines, ends[tp]) for tp in partitions}
            records = [r async for batch in _read(consumer, begins, stops) for r in batch]
            _write(sorted(records, key=_order)[:lines])
        else:
            starts = {tp: max(ends[tp] - lines, begins[tp]) for tp in partitions}
            records = sorted(
                [r async for b in _read(consumer, starts, ends) for r in b], key=_order
            )
            _write(records[max(len(records) - lines, 0) :])
        if follow:  # what was written after we started
            for tp in partitions:
                consumer.seek(tp, ends[tp])
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                _write(sorted((r for rs in batch.values() for r in rs), key=_order))
    finally:
        await consumer.stop()


async def _read(
    consumer: AIOKafkaConsumer, starts: Offsets, stops: Offsets
) -> AsyncIterator[list[ConsumerRecord]]:
    """Batches of the records from `starts` up to (not including) `stops` of each partition."""
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
    pending = {tp for tp in starts if starts[tp] < stops[tp]}
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=1000)
        records = [r for tp, rs in batch.items() for r in rs if r.offset < stops[tp]]
        for tp in list(pending):
            if await consumer.position(tp) >= stops[tp]:
                pending.discard(tp)
        yield sorted(records, key=_order)


def _order(record: ConsumerRecord) -> tuple[int, int, int]:
    """Time order across partitions; partition and offset break ties."""
    return (record.timestamp, record.partition, record.offset)


def _write(records: Iterable[ConsumerRecord]) -> None:
    """Print records as JSON lines and flush, so a follower's reader sees them at once."""
    out = b"".join(map(render, records))
    if out:
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()


def render(record: ConsumerRecord) -> bytes:
    """One JSON line: a JSON object value as is, anything else as `{"key": …, "value": …}`."""
    try:
        value = orjson.loads(record.value) if record.value is not None else None
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return orjson.dumps(value) + b"\n"
    return orjson.dumps({"key": _text(record.key), "value": _text(record.value)}) + b"\n"


def _text(data: bytes | None) -> str | None:
    """UTF-8 text as is; other bytes as base64."""
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return base64.b64encode(data).decode()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the flush at exit does not fail on the closed pipe too."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
