"""What the end-to-end measurements run on: a broker, fresh topics, a backlog, worker processes.

Everything here is started as a user would start it (the project's `LocalKafka`, `streamlearn
worker` subprocesses) and is stopped by the context managers, also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiokafka import AIOKafkaProducer

from streamlearn.commands.options import security_from_env
from streamlearn.kafka.broker import prepare_topics
from streamlearn.kafka.local import free_port
from streamlearn.kafka.security import Security
from streamlearn.settings import Topics
from streamlearn.testing import WorkerProcess, unique

Encoded = list[tuple[bool, bytes, bytes]]  # (is_observation, key, value), see Workload.encoded


@functools.cache
def security() -> Security:
    """How every client of the bench reaches the cluster: the `STREAMLEARN_*` security
    variables, as the worker subprocesses (which inherit them) read them too."""
    return security_from_env()


def fresh_topics(bootstrap: str, partitions: int) -> Topics:
    """Four new, empty topics with one partition count."""
    topics = Topics.with_prefix(unique("bench") + ".")
    asyncio.run(prepare_topics(bootstrap, topics, partitions, security=security()))
    return topics


def producer(bootstrap: str, linger_ms: int) -> AIOKafkaProducer:
    """An aiokafka producer: murmur2 placement of keys, like the worker expects."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=linger_ms, acks="all", max_batch_size=256 * 1024,
        **security().client_kwargs(),
    )  # fmt: skip


async def produce_backlog(bootstrap: str, topics: Topics, records: Encoded) -> None:
    """Send all records as fast as the client batches them and wait until the broker has them."""
    client = producer(bootstrap, linger_ms=20)
    await client.start()
    try:
        for is_observation, key, value in records:
            topic = topics.observations if is_observation else topics.labels
            await client.send(topic, key=key, value=value)
        await client.flush()
    finally:
        await client.stop()


class WorkerPool:
    """Workers of one app (one app id, so one consumer group) on one set of topics.

    Each has its own data dir and web port under `root`. Leaving the `with` block stops
    every worker that was started.
    """

    def __init__(
        self, bootstrap: str, topics: Topics, root: Path, model: str, partitions: int
    ) -> None:
        self.bootstrap, self.topics, self.root = bootstrap, topics, root
        self.model, self.partitions = model, partitions
        self.app_id = unique("bench-app")
        self.workers: list[WorkerProcess] = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, count: int) -> list[WorkerProcess]:
        """Make `count` more workers (not started yet)."""
        new = [self._new_worker() for _ in range(count)]
        self.workers.extend(new)
        return new

    def start(self, workers: list[WorkerProcess]) -> float:
        """Launch `workers` at once; return the seconds until all of them said they are ready."""
        launched = time.perf_counter()
        with ThreadPoolExecutor(len(workers)) as starting:
            list(starting.map(WorkerProcess.start, workers))
        return time.perf_counter() - launched

    def _new_worker(self) -> WorkerProcess:
        data_dir = self.root / unique("worker")
        return WorkerProcess(
            self.bootstrap, data_dir, free_port(), self.topics, self.app_id,
            model=self.model, partitions=self.partitions,
        )  # fmt: skip

    def counters(self) -> dict[str, int]:
        """The counters of the workers whose web server answers, summed (zeros if none does)."""
        total = dict.fromkeys(("consumed", "predicted", "learned"), 0)
        for worker in self.workers:
            try:
                counters = worker.counters()
            except OSError:  # not listening yet: it has not started consuming either
                continue
            for name, value in counters.items():
                total[name] = total.get(name, 0) + value
        return total

    def describe(self) -> str:
        """Each worker's consumed count, for a stalled drain's message."""
        parts = []
        for number, worker in enumerate(self.workers, start=1):
            try:
                consumed = f"{worker.counters()['consumed']:,}"
            except OSError:
                consumed = "no answer"
            parts.append(f"worker {number} consumed {consumed}")
        return ", ".join(parts)

    def check_alive(self) -> None:
        """Raise with the log tail if a worker has exited."""
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is not None:
                raise RuntimeError(f"a worker exited: {worker.log()[-2000:]}")

    def stop(self) -> None:
        for worker in self.workers:
            if worker.process is not None:
                worker.stop()


def proc_status(pid: int, field: str) -> int:
    """A `/proc/<pid>/status` memory field (VmHWM: peak RSS, VmRSS: current) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) process `pid` has used so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disk_bytes(directory: Path) -> int:
    """The sizes of all files under `directory`, summed."""
    return sum(
        (Path(parent) / name).stat().st_size
        for parent, _, names in os.walk(directory)
        for name in names
    )
