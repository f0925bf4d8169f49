"""How long a partition move takes: one worker holds N keys, a second joins and takes half.

    python -m bench.partition_move --keys 10000

Reports the time from the second worker's start to its "tables recovered" line (group join,
assignment, changelog recovery of its partitions) and how many changelog records it read.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from pathlib import Path

import click

from bench.cluster import security
from streamlearn.kafka.broker import prepare_topics
from streamlearn.kafka.local import free_port, kafka_for
from streamlearn.settings import Topics
from streamlearn.testing import WorkerProcess, produce, wait_for

RESUMED = re.compile(
    r"gained \[[\d, ]+\], lost \[\]; tables recovered, processing resumed after ([\d.]+)s"
)


@click.command()
@click.option("--keys", default=10_000, show_default=True, help="Keys learned before the move.")
@click.option("--partitions", default=8, show_default=True)
def main(keys: int, partitions: int) -> None:
    """Measure one partition move with `keys` keys of linear-regression state."""
    with tempfile.TemporaryDirectory(prefix="streamlearn-move-") as scratch:
        root = Path(scratch)
        with kafka_for(None, root / "kafka") as bootstrap:
            _measure(bootstrap, root, keys, partitions)


def _measure(bootstrap: str, root: Path, keys: int, partitions: int) -> None:
    topics = Topics.with_prefix("move.")
    asyncio.run(prepare_topics(bootstrap, topics, partitions, security=security()))
    labels = [
        (topics.labels, f"key-{k}", {"id": 0, "y": float(k % 10), "x": {"a": float(k % 7)}})
        for k in range(keys)
    ]
    asyncio.run(produce(bootstrap, labels, security=security()))

    def worker(name: str) -> WorkerProcess:
        return WorkerProcess(
            bootstrap, root / name, free_port(), topics, "move", partitions=partitions
        )

    first = worker("w1").start()
    try:
        wait_for(lambda: first.counters()["learned"] == keys, 300, 0.2)
        second = worker("w2")
        started = time.monotonic()
        second.start()
        try:
            wait_for(lambda: RESUMED.search(second.log()) is not None, 300, 0.05)
            seconds = time.monotonic() - started
            after_assignment = RESUMED.search(second.log()).group(1)
            moved = re.search(r"now (\d+) partitions", second.log()).group(1)
        finally:
            second.stop()
    finally:
        first.stop()
    size = sum(f.stat().st_size for f in (root / "w1").rglob("*") if f.is_file())
    click.echo(
        f"{keys} keys on {partitions} partitions ({size / keys:.0f} bytes per key on disk);"
        f" {moved} partitions moved to a new worker: {seconds:.1f}s from its start to"
        f" processing resumed ({after_assignment}s of it after the assignment)"
    )


if __name__ == "__main__":
    main()
