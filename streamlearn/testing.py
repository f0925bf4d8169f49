"""Helpers to drive streamlearn from outside, as a user would: a worker subprocess, and
produce/consume against a real broker. Used by the tests, the demo and the benchmark.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from rocksdict import AccessType, Options, Rdict

from streamlearn.commands.produce import Stamps
from streamlearn.errors import StreamlearnError
from streamlearn.kafka.broker import admin, partition_counts
from streamlearn.kafka.partitioner import partition_for
from streamlearn.kafka.security import PLAINTEXT, Security
from streamlearn.settings import Topics

READY_LINE = "streamlearn worker ready"
FAUST_OFFSET_KEY = b"__faust\0offset__"  # each table partition's changelog offset, not a key


def unique(prefix: str) -> str:
    """A name no earlier run used, so topics, groups and changelogs never carry old data."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class WorkerProcess:
    """One `streamlearn worker` subprocess with its own data dir, web port and log file."""

    def __init__(
        self,
        broker: str,
        data_dir: Path,
        web_port: int,
        topics: Topics,
        app_id: str,
        model: str = "linear-regression",  # one spec, or several comma-separated
        partitions: int = 8,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        security: Security | None = None,  # as STREAMLEARN_* variables (None: inherit them)
    ) -> None:
        self.data_dir = Path(data_dir)
        self.web_port = web_port
        self.log_path = log_path or self.data_dir.with_name(self.data_dir.name + ".log")
        self.args = [
            sys.executable, "-m", "streamlearn", "worker",
            "--broker", broker, "--data-dir", str(data_dir), "--web-port", str(web_port),
            "--app-id", app_id, "--model", model, "--partitions", str(partitions),
            "--observations-topic", topics.observations, "--labels-topic", topics.labels,
            "--predictions-topic", topics.predictions,
            "--dead-letters-topic", topics.dead_letters, *extra_args,
        ]  # fmt: skip
        self.env = {**os.environ, **(security.env() if security else {}), **(env or {})}
        self.process: subprocess.Popen | None = None
        self._log_offset = 0

    def start(self, timeout: float = 90.0) -> WorkerProcess:
        """Start the worker and wait until it logs that it is ready (after table recovery)."""
        self.launch()
        wait_for(lambda: self.ready() or not self.running(), timeout)
        if not self.running():
            raise StreamlearnError(f"worker exited early: {self.log()[-3000:]}")
        return self

    def launch(self) -> None:
        """Start the worker process without waiting for it (a soak may kill it while it starts)."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, start_new_session=True,
            )  # fmt: skip

    def running(self) -> bool:
        """Whether the worker's process is alive."""
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        """Whether this run of the worker has logged that it is ready."""
        return READY_LINE in self.log()

    def log(self) -> str:
        """What this run of the worker has logged so far."""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def counters(self) -> dict[str, int]:
        url = f"http://127.0.0.1:{self.web_port}/counters/"
        status, _, body = web_request(url, token=self.env.get("STREAMLEARN_WEB_TOKEN"))
        if status != 200:
            raise StreamlearnError(f"{url} answered {status}: {body}")
        return body

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for a clean exit (SIGKILL after `timeout`); the exit code."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int:
        """SIGKILL: a crash, with no chance to flush or commit."""
        return self._signal(signal.SIGKILL, 30.0)

    def _signal(self, signum: int, timeout: float) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def web_request(
    url: str, body: Any = None, token: str | None = None, headers: dict | None = None
) -> tuple[int, dict[str, str], Any]:
    """`(status, headers, body)` of a GET (a POST with `body`: a dict as JSON, bytes as they
    are) to a worker's web server; the body parsed as JSON when it is JSON, else text."""
    data = None if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}))
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            status, got, raw = reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        status, got, raw = error.code, dict(error.headers), error.read()
    if got.get("Content-Type", "").startswith("application/json"):
        return status, got, orjson.loads(raw)
    return status, got, raw.decode()


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    """Poll `condition` until it holds; `TimeoutError` if it does not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


async def produce(
    bootstrap: str, records: Iterable[tuple[str, Any, Any]], *, security: Security = PLAINTEXT
) -> int:
    """Send `(topic, key, value)` in order, with increasing timestamps as `streamlearn produce`
    stamps them; str keys are UTF-8, dict values JSON. Returns the count."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024, acks="all",
        **security.client_kwargs(),
    )  # fmt: skip
    await producer.start()
    count = 0
    stamps = Stamps()
    try:
        for topic, key, value in records:
            await producer.send(
                topic, key=_bytes(key), value=_bytes(value), timestamp_ms=stamps.next()
            )
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


async def produce_on_each_partition(
    bootstrap: str, topic: str, partitions: int, count: int
) -> None:
    """`count` records `{"n": 0..count-1}` on each of `topic`'s partitions, keyed to land there."""
    names = (f"k{i}" for i in range(20 * partitions))
    keys = {partition_for(name.encode(), partitions): name for name in names}
    await produce(
        bootstrap, [(topic, keys[p], {"n": i}) for p in range(partitions) for i in range(count)]
    )


def _bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return orjson.dumps(value)


class TopicReader:
    """Reads a topic from the beginning; `read(n)` waits for the next n records."""

    def __init__(self, bootstrap: str, topic: str, *, security: Security = PLAINTEXT) -> None:
        self.consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False, fetch_max_wait_ms=100, **security.client_kwargs(),
        )  # fmt: skip
        self.records: list[ConsumerRecord] = []

    async def __aenter__(self) -> TopicReader:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def read(self, count: int, timeout: float = 60.0) -> list[ConsumerRecord]:
        """The next `count` records; `TimeoutError` if they do not arrive in time."""
        target = len(self.records) + count
        await self.wait_until(lambda records: len(records) >= target, timeout)
        return self.records[target - count : target]

    async def wait_until(self, condition: Callable[[list], bool], timeout: float = 60.0) -> None:
        """Read on until `condition(all records so far)` holds."""

        async def loop() -> None:
            while not condition(self.records):
                batch = await self.consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    self.records.extend(records)

        await asyncio.wait_for(loop(), timeout)

    def values(self) -> list[dict]:
        return [orjson.loads(r.value) for r in self.records]


async def until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    """The async twin of `wait_for`, for tests and tools that run inside an event loop."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def record_count(bootstrap: str, topic: str, *, security: Security = PLAINTEXT) -> int:
    """How many records `topic` holds (the sum of its partitions' end offsets); 0 if missing."""
    partitions = (await partition_counts(bootstrap, [topic], security=security)).get(topic, 0)
    if not partitions:
        return 0
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **security.client_kwargs())
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


async def group_lag(
    bootstrap: str, group: str, topics: Sequence[str], *, security: Security = PLAINTEXT
) -> int:
    """Records of `topics` not yet committed by consumer group `group` (all of them if none)."""
    counts = await partition_counts(bootstrap, list(topics), security=security)
    partitions = [TopicPartition(t, p) for t, n in counts.items() for p in range(n)]
    async with admin(bootstrap, security=security) as client:
        committed = await client.list_consumer_group_offsets(group)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **security.client_kwargs())
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in partitions)


def stored_states(directory: Path) -> tuple[int, int]:
    """`(keys, value bytes)` over the RocksDB table partitions a stopped worker left behind."""
    keys = size = 0
    for path in sorted(directory.rglob("*.db")):
        if not (path / "CURRENT").exists():
            continue
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            for key, value in db.items():
                if key != FAUST_OFFSET_KEY:
                    keys += 1
                    size += len(value)
        finally:
            db.close()
    return keys, size
