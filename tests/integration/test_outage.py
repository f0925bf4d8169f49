"""A broker that goes away and comes back: the worker says so in a few lines, keeps its state
and resumes; `produce` and `tail` give up with one line after `--broker-timeout`.

Each test runs a broker of its own (a `LocalKafka` on its own port and data dir), since it
stops it; the session's broker serves the other tests meanwhile.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamlearn.kafka.broker import ensure_topics
from streamlearn.kafka.local import LocalKafka, free_port
from streamlearn.kafka.outage import GONE
from streamlearn.settings import Topics
from streamlearn.testing import TopicReader, record_count, unique, until, wait_for
from tests.integration.conftest import REPO, Workers
from tests.integration.test_scale_out import (
    check_end_state,
    check_one_prediction_per_observation,
    probe_all,
    reference,
    send,
    stream,
)
from tests.integration.test_serving import scrape

PARTITIONS = 8  # test_scale_out's stream and oracle
OUTAGE = 30.0  # seconds the broker stays away: the reminder line comes at 30 s
LOG_BOUND = 10  # lines a worker may log from the broker's stop until it says it is back,
# besides its counters line every 10 s (measured: 4 to 5: gone, a reminder, back, Faust's
# "Discovered coordinator" twice; ~3,500 lines without the filter)
BROKER_TIMEOUT = 5.0  # produce's and tail's --broker-timeout here
MARGIN = 15.0  # beyond it: one probe, the cancelled work's clean-up, a loaded machine


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[LocalKafka]:
    """A single-node broker only this test uses, stopped at the end."""
    kafka = LocalKafka(port=free_port(), data_dir=tmp_path / "kafka")
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


async def new_topics(bootstrap: str) -> Topics:
    """Four fresh topics on `bootstrap`."""
    names = Topics.with_prefix(unique("t") + ".")
    await ensure_topics(bootstrap, dict.fromkeys(names.names(), PARTITIONS))
    return names


async def test_a_broker_away_for_30s_costs_a_few_log_lines_and_loses_nothing(own_kafka, tmp_path):
    bootstrap = own_kafka.bootstrap
    topics = await new_topics(bootstrap)
    workers = Workers(bootstrap, topics, tmp_path, unique("app"), PARTITIONS)
    # A checkpoint comes due during the outage (20 s after the intake starts): its predictions
    # and state records wait for the broker, then the commit goes through or the records are
    # read again; either way the end state is exact.
    worker = workers.make(extra_args=("--checkpoint-interval", "20", "--session-timeout", "8"))
    try:
        await asyncio.to_thread(worker.start)
        events = stream()
        half = len(events) // 2
        await asyncio.to_thread(send, bootstrap, topics, events[:half])
        await until(lambda: worker.counters()["consumed"] >= half, 60)

        before = len(worker.log().splitlines())
        gone_at = time.monotonic()
        await asyncio.to_thread(own_kafka.stop)
        await until(lambda: "lost the Kafka broker" in worker.log(), 30)
        # The reminder is due 30 s after the outage began: the broker stays away until then.
        await until(lambda: "is still unreachable" in worker.log(), OUTAGE + 30)
        assert time.monotonic() - gone_at >= OUTAGE
        await asyncio.to_thread(own_kafka.start)  # the same port and data dir
        await until(lambda: "answers again" in worker.log(), 60)

        lines = worker.log().splitlines()[before:]
        back = next(i for i, line in enumerate(lines) if "answers again" in line)
        outage = [line for line in lines[: back + 1] if "counters {" not in line]
        assert len(outage) <= LOG_BOUND, "\n".join(outage)
        assert sum("lost the Kafka broker" in line for line in lines) == 1
        # No connection failure passes the filter. A broker that shuts down cleanly first hands
        # its group away, and the library's one "coordinator not available" line as that
        # happens is not about the broker being unreachable yet.
        errors = [line for line in outage if "ERROR" in line]
        assert len(errors) <= 1 and not any(GONE.search(line) for line in errors), errors

        await asyncio.to_thread(send, bootstrap, topics, events[half:])
        async with TopicReader(bootstrap, topics.predictions) as reader:
            await workers.drained()
            probes = await probe_all(bootstrap, topics, reader)
            values = reader.values()
        check_end_state(probes, reference())  # every label learned exactly once
        check_one_prediction_per_observation(values)  # every observation answered
        metrics = scrape(worker)
        checkpoints = metrics[("streamlearn_checkpoint_seconds_count", ())]
        quick = metrics[("streamlearn_checkpoint_seconds_bucket", (("le", "10.0"),))]
        assert checkpoints > quick  # one of them waited for the broker through the outage
        assert worker.running()
    finally:
        workers.stop_all()


def cli(out: Path, *args: str) -> subprocess.Popen:
    """`streamlearn ARGS` in the background, as a user runs it; stdout and stderr go to files
    `out`.stdout and `out`.stderr (a pipe nobody reads would block it)."""
    with (
        open(out.with_suffix(".stdout"), "wb") as stdout,
        open(out.with_suffix(".stderr"), "wb") as stderr,
    ):
        return subprocess.Popen(
            [sys.executable, "-m", "streamlearn", *args],
            stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
            cwd=REPO, start_new_session=True,
        )  # fmt: skip


def assert_gave_up_with_one_line(process: subprocess.Popen, out: Path, gone_at: float) -> None:
    """Exited within the timeout and a margin of the broker going, with one error line."""
    remaining = gone_at + BROKER_TIMEOUT + MARGIN - time.monotonic()
    try:
        process.wait(timeout=max(remaining, 0.1))
    except subprocess.TimeoutExpired:
        pytest.fail(f"{out.name} still ran {BROKER_TIMEOUT + MARGIN:.0f}s after the broker went")
    stderr = out.with_suffix(".stderr").read_text()
    assert process.returncode != 0, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr[-3000:]
    assert lines[0].startswith("streamlearn: error: the Kafka broker at"), stderr
    assert "has not answered" in lines[0], stderr


def test_produce_and_tail_give_up_with_one_line_after_the_broker_timeout(own_kafka, tmp_path):
    bootstrap = own_kafka.bootstrap
    topics = asyncio.run(new_topics(bootstrap))
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "id,key,x,y\n" + "".join(f"{i},k{i % 20},{i % 7},{i % 5}\n" for i in range(10**5))
    )
    timeout = ("--broker", bootstrap, "--broker-timeout", str(BROKER_TIMEOUT))
    produced, tailed = tmp_path / "produce", tmp_path / "tail"
    producer = cli(
        produced, "produce", str(rows), "--key", "key", "--target", "y", "--id", "id",
        "--rate", "200", "--partitions", str(PARTITIONS),
        "--observations-topic", topics.observations, "--labels-topic", topics.labels, *timeout,
    )  # fmt: skip
    tail = cli(tailed, "tail", topics.observations, "--follow", *timeout)
    try:
        count = lambda: asyncio.run(record_count(bootstrap, topics.observations))  # noqa: E731
        wait_for(lambda: count() > 100, 60, interval=0.5)
        wait_for(lambda: tailed.with_suffix(".stdout").stat().st_size > 0, 60, interval=0.2)
        own_kafka.stop()
        gone_at = time.monotonic()
        assert_gave_up_with_one_line(producer, produced, gone_at)
        assert_gave_up_with_one_line(tail, tailed, gone_at)
    finally:
        for process in (producer, tail):
            if process.poll() is None:
                process.kill()
                process.wait()
