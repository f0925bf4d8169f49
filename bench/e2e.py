"""End-to-end drain: `streamlearn worker` processes on a backlog already in Kafka.

The caller produces the backlog once (untimed); each drain is a new app id, so a new consumer
group reads the same topics from the start, with new tables. The workers' own counters, polled
over HTTP from the moment they are launched, time the drain: from the first poll that sees a
consumed record to the first poll that sees every pair predicted and learned. Records consumed
before that first poll are subtracted, so the rate covers exactly the interval timed; the end
is late by at most one poll interval. Several workers are launched together, as a user scaling
out on a backlog would, so their drain includes the consumer group's rebalance.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.cluster import WorkerPool, cpu_seconds, disk_bytes, proc_status
from streamlearn.settings import Topics
from streamlearn.testing import stored_states

POLL_SECONDS = 0.05
STALL_SECONDS = 30.0  # no record consumed for this long: stalled (a healthy rebalance takes <10)


class Stalled(RuntimeError):
    """The workers stopped consuming before every pair was learned."""


@dataclass(frozen=True)
class Drain:
    """One drain of a backlog of `pairs` pairs by `workers` workers."""

    workers: int
    pps: float  # pairs per second
    seconds: float  # the timed part of the drain
    startup_seconds: float  # launch to "ready" (imports, group join, table recovery)
    rss_peak_bytes: int  # the workers' peak RSS (VmHWM), summed
    disk_bytes: int  # the workers' data dirs after they stopped
    state_keys: int  # keys in the RocksDB tables after they stopped
    state_bytes: int  # the table values (pickled per-key state), summed
    worker_cores: float  # CPU the workers used during the timed drain, in cores (summed)
    broker_cores: float | None  # the same for the broker, when it runs on this machine


@dataclass(frozen=True)
class Target:
    """Where a drain reads from, and what it runs."""

    bootstrap: str
    topics: Topics
    model: str
    partitions: int
    broker_pid: int | None = None  # the broker's process, to tell what share of the CPUs it takes


def drain(target: Target, pairs: int, workers: int, root: Path, timeout: float) -> Drain:
    """Start `workers` workers on the backlog and time them until every pair is learned."""
    pool = WorkerPool(target.bootstrap, target.topics, root, target.model, target.partitions)
    # The pool is left first: stopping the workers also ends a start that is still waiting.
    with ThreadPoolExecutor(1) as background, pool:
        starting = background.submit(pool.start, pool.add(workers))
        seconds, events, cpu = _watch(pool, pairs, timeout, _cpu_sampler(pool, target.broker_pid))
        startup = starting.result()
        rss_peak = sum(proc_status(w.process.pid, "VmHWM") for w in pool.workers)
    data_dirs = [w.data_dir for w in pool.workers]
    states = [stored_states(d) for d in data_dirs]
    return Drain(
        workers=workers,
        pps=events / 2 / seconds,
        seconds=seconds,
        startup_seconds=startup,
        rss_peak_bytes=rss_peak,
        disk_bytes=sum(disk_bytes(d) for d in data_dirs),
        state_keys=sum(keys for keys, _ in states),
        state_bytes=sum(size for _, size in states),
        worker_cores=cpu[0] / seconds,
        broker_cores=None if cpu[1] is None else cpu[1] / seconds,
    )


Sample = tuple[float, float | None]  # CPU seconds so far: the workers' (summed), the broker's


def _cpu_sampler(pool: WorkerPool, broker_pid: int | None) -> Callable[[], Sample]:
    def sample() -> Sample:
        launched = [w.process.pid for w in pool.workers if w.process is not None]
        broker = None if broker_pid is None else cpu_seconds(broker_pid)
        return sum(map(cpu_seconds, launched)), broker

    return sample


def _watch(
    pool: WorkerPool, pairs: int, timeout: float, sample: Callable[[], Sample]
) -> tuple[float, int, Sample]:
    """`(seconds, events processed in them, CPU seconds used in them)` from the first consumed
    record to the last learn."""
    deadline = time.perf_counter() + timeout
    first: tuple[float, int] | None = None
    idle, idle_cpu = time.perf_counter(), sample()
    progress = (time.perf_counter(), 0)  # when `consumed` last changed, and to what
    while True:
        pool.check_alive()  # also ends the wait if a worker failed to start
        counters = pool.counters()
        now = time.perf_counter()
        if first is None and counters["consumed"] == 0:
            idle, idle_cpu = now, sample()  # the last poll before any record was consumed
        elif first is None:
            # A batched worker can take a whole small backlog in one fetch: then the drain
            # began after the previous poll, and timing from there is late by at most one poll.
            if counters["learned"] < pairs:
                first, first_cpu = (now, counters["consumed"]), sample()
            else:
                first, first_cpu = (idle, 0), idle_cpu
        if counters["predicted"] >= pairs and counters["learned"] >= pairs:
            break
        if counters["consumed"] != progress[1]:
            progress = (now, counters["consumed"])
        elif now - progress[0] > STALL_SECONDS:
            raise Stalled(
                f"nothing consumed for {STALL_SECONDS:.0f} s after {progress[1]:,} records;"
                f" predicted {counters['predicted']:,} and learned {counters['learned']:,}"
                f" of {pairs:,} pairs ({pool.describe()})"
            )
        if now > deadline:
            raise TimeoutError(f"the drain did not finish within {timeout:.0f}s: {counters}")
        time.sleep(POLL_SECONDS)
    assert first is not None
    started, consumed = first
    if now == started:
        raise RuntimeError(
            "the backlog was drained before the first poll; use more --events to time it"
        )
    end_cpu = sample()
    used = (
        end_cpu[0] - first_cpu[0],
        None if end_cpu[1] is None or first_cpu[1] is None else end_cpu[1] - first_cpu[1],
    )
    return now - started, 2 * pairs - consumed, used
