"""`streamlearn tail` against the real broker: last N, from the beginning, follow, pipes, errors."""

from __future__ import annotations

import asyncio
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from streamlearn.testing import produce
from tests.conftest import assert_one_line_error, run_cli

REPO = Path(__file__).parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def predictions(topic: str, ids: range) -> list[tuple[str, str, dict]]:
    """Prediction-like records spread over four keys."""
    return [(topic, f"k{i % 4}", {"id": i, "key": f"k{i % 4}", "y_pred": i / 2}) for i in ids]


async def produce_timed(bootstrap: str, records: list[tuple[str, str, dict]]) -> None:
    """Like `produce`, with timestamps one millisecond apart: tail orders records by time."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        base = int(time.time() * 1000)
        for n, (topic, key, value) in enumerate(records):
            await producer.send(
                topic, key=key.encode(), value=orjson.dumps(value), timestamp_ms=base + n
            )
        await producer.flush()
    finally:
        await producer.stop()


def ids_of(stdout: str) -> list[int]:
    return [orjson.loads(line)["id"] for line in stdout.splitlines()]


def by_key(ids: list[int]) -> dict[str, list[int]]:
    """Ids per key; a key stays on one partition, so this is partition order."""
    out: dict[str, list[int]] = {}
    for i in ids:
        out.setdefault(f"k{i % 4}", []).append(i)
    return out


def test_last_n_records(kafka_bootstrap, topics):
    asyncio.run(produce_timed(kafka_bootstrap, predictions(topics.predictions, range(15))))
    ran = run_cli(
        "tail", "--broker", kafka_bootstrap, "--predictions-topic", topics.predictions, "-n", "5"
    )
    assert ran.code == 0, ran
    assert ids_of(ran.stdout) == [10, 11, 12, 13, 14]
    assert ran.stderr == ""


def test_default_topic_comes_from_the_prefix(kafka_bootstrap, topics):
    asyncio.run(produce_timed(kafka_bootstrap, predictions(topics.predictions, range(12))))
    prefix = topics.predictions.removesuffix("predictions")
    ran = run_cli("tail", "--broker", kafka_bootstrap, "--topic-prefix", prefix)
    assert ran.code == 0, ran
    assert ids_of(ran.stdout) == list(range(2, 12))  # the default is the last 10


def test_from_beginning_prints_everything_in_partition_order(kafka_bootstrap, topics):
    asyncio.run(produce_timed(kafka_bootstrap, predictions(topics.predictions, range(15))))
    args = ("tail", "--broker", kafka_bootstrap, "--predictions-topic", topics.predictions)
    ran = run_cli(*args, "--from-beginning")
    assert ran.code == 0, ran
    ids = ids_of(ran.stdout)
    assert sorted(ids) == list(range(15))
    assert by_key(ids) == by_key(list(range(15)))

    first = run_cli(*args, "--from-beginning", "-n", "3")
    assert first.code == 0, first
    assert ids_of(first.stdout) == [0, 1, 2]


def test_explicit_topic_and_non_json_values(kafka_bootstrap, topics):
    asyncio.run(
        produce(
            kafka_bootstrap,
            [
                (topics.dead_letters, "k1", b"not json"),
                (topics.dead_letters, None, b"\xff\xfe"),
                (topics.dead_letters, "k2", b"[1, 2]"),
            ],
        )
    )
    ran = run_cli("tail", topics.dead_letters, "--broker", kafka_bootstrap)
    assert ran.code == 0, ran
    lines = sorted(map(orjson.loads, ran.stdout.splitlines()), key=str)
    assert lines == sorted(
        [
            {"key": "k1", "value": "not json"},
            {"key": None, "value": "//4="},  # not UTF-8: base64
            {"key": "k2", "value": "[1, 2]"},  # JSON but not an object
        ],
        key=str,
    )


def test_follow_prints_new_records_and_stops_on_ctrl_c(kafka_bootstrap, topics):
    asyncio.run(produce(kafka_bootstrap, predictions(topics.predictions, range(1))))
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlearn", "tail", "--follow", "--broker", kafka_bootstrap,
         "--predictions-topic", topics.predictions],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=ENV,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout])
    reader.start()
    try:

        def next_id(timeout: float = 30.0) -> int:
            return orjson.loads(lines.get(timeout=timeout))["id"]

        assert next_id() == 0  # the existing record: tail has read up to where it started
        asyncio.run(produce(kafka_bootstrap, predictions(topics.predictions, range(1, 9))))
        assert sorted(next_id() for _ in range(8)) == list(range(1, 9))
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)
    stderr = process.stderr.read()
    process.stderr.close()
    assert "Traceback" not in stderr, stderr
    assert stderr == "", stderr


def test_follow_stops_on_sigterm(kafka_bootstrap, topics):
    asyncio.run(produce(kafka_bootstrap, predictions(topics.predictions, range(1))))
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlearn", "tail", "-f", "--broker", kafka_bootstrap,
         "--predictions-topic", topics.predictions],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=ENV,
    )  # fmt: skip
    try:
        assert orjson.loads(process.stdout.readline())["id"] == 0  # following now
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert stderr == "", stderr


def test_a_pipe_closed_early_is_not_an_error(kafka_bootstrap, topics):
    asyncio.run(produce(kafka_bootstrap, predictions(topics.predictions, range(3000))))
    tail = [sys.executable, "-m", "streamlearn", "tail", "--from-beginning",
            "--broker", kafka_bootstrap, "--predictions-topic", topics.predictions]  # fmt: skip
    done = subprocess.run(
        ["bash", "-c", f"{shlex.join(tail)} | head -1; echo \"tail exit ${{PIPESTATUS[0]}}\" >&2"],
        capture_output=True, text=True, timeout=120, env=ENV,
    )  # fmt: skip
    assert len(done.stdout.splitlines()) == 1, done
    assert "Traceback" not in done.stderr, done.stderr
    assert "Broken pipe" not in done.stderr, done.stderr
    assert done.stderr.strip() == "tail exit 0", done.stderr


def test_unreachable_broker_is_one_line_within_seconds():
    started = time.monotonic()
    ran = run_cli("tail", "--broker", "127.0.0.1:1", timeout=15)
    assert_one_line_error(ran)
    assert "127.0.0.1:1" in ran.stderr
    assert time.monotonic() - started < 15


def test_unknown_topic_is_one_line_naming_it(kafka_bootstrap, unique):
    missing = unique("no-such-topic")
    ran = run_cli("tail", missing, "--broker", kafka_bootstrap)
    assert_one_line_error(ran)
    assert missing in ran.stderr
