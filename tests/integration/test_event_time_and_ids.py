"""On the real broker: no single event or file layout silently stops a key from learning.

Two findings of a new user's M5 trial: one event without "ts" in a stream of 2016 dates moved
its key's clock to today, so every later label of that key expired, through restarts too; and
two daily files sent with `streamlearn produce` reused the ids 0..N, so the second file's rows
were taken for duplicates.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

from streamlearn.datasets.sales import sales_rows
from streamlearn.testing import TopicReader, produce, until
from tests.conftest import run_cli
from tests.integration.conftest import topic_flags

START = datetime(2016, 3, 1, tzinfo=UTC)


def day_events(topics, key: str, days: range, untimed_on: int | None = None) -> list:
    """Daily observations of `key` (text features only), each label a day late; on day
    `untimed_on` one more observation and its label carry no "ts"."""
    events = []
    for day in days:
        ts = (START + timedelta(days=day)).timestamp()
        x = {"id": key, "date": (START + timedelta(days=day)).date().isoformat()}
        events.append((topics.observations, key, {"id": day, "x": x, "ts": ts}))
        if day - 1 in days:
            events.append((topics.labels, key, {"id": day - 1, "y": float(day % 7), "ts": ts}))
        if day == untimed_on:
            events.append((topics.observations, key, {"id": "no-ts", "x": x}))
            events.append((topics.labels, key, {"id": "no-ts", "y": 1.0}))
    events.append((topics.labels, key, {"id": days[-1], "y": 1.0, "ts": ts + 86400}))
    return events


async def test_an_event_without_ts_does_not_stop_its_key_learning(kafka_bootstrap, topics, workers):
    # A backlog, so the worker merges each topic's records in the order they were written.
    await produce(kafka_bootstrap, day_events(topics, "k", range(0, 30), untimed_on=10))
    worker = workers.start()
    # Before the fix: 11 learned, then every later label expired.
    await until(lambda: worker.counters()["learned"] == 31, 60)
    counters = worker.counters()
    assert counters["expired"] == 0 and counters["mixed_time"] == 2
    # The worker says so in its log, and that the model saw no usable feature.
    await until(lambda: 'had no "ts" on keys whose events carry one' in worker.log(), 30)
    assert "observations had no feature the model can use" in worker.log()

    worker.stop()
    await produce(kafka_bootstrap, day_events(topics, "k", range(30, 40)))
    worker.start()  # the same data dir: the key's state comes back from RocksDB
    await until(lambda: worker.counters()["learned"] == 10, 60)
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await reader.read(41)
        last = reader.values()[-1]
    # In the order sent: 31 labels before the restart, then 30..37 before observation 39.
    assert (last["id"], last["n_learned"]) == (39, 39)
    assert worker.counters()["expired"] == 0


def write_days(path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["id", "date", "y"])
        writer.writeheader()
        writer.writerows(rows)


async def test_two_daily_files_keep_distinct_ids_and_the_m5_columns(
    kafka_bootstrap, topics, workers, tmp_path
):
    keys, days = 6, 8
    rows = sales_rows(keys, days)
    half = keys * days // 2
    write_days(tmp_path / "first.csv", rows[:half])
    write_days(tmp_path / "second.csv", rows[half:])
    worker = workers.start(model="m5")
    flags = ["--key", "id", "--target", "y", "--time", "date", "--label-delay", "1d"]
    for name in ("first.csv", "second.csv"):
        ran = run_cli(
            "produce", str(tmp_path / name), *flags, *topic_flags(kafka_bootstrap, topics)
        )
        assert ran.code == 0, ran.stderr
    # Before the fix the second file's ids were the first's (0..23): duplicates, no predictions.
    await until(lambda: worker.counters()["learned"] == len(rows), 60)
    counters = worker.counters()
    assert counters["predicted"] == len(rows)
    assert counters["duplicate"] == counters["dead_lettered"] == counters["expired"] == 0
