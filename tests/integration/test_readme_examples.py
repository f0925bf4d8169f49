"""The README's aiokafka snippet, run against the real broker with the test's own topics."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import orjson

from streamlearn.kafka.broker import ensure_topics
from streamlearn.kafka.partitioner import partition_for
from streamlearn.testing import TopicReader
from tests.readme import code_blocks


async def test_the_aiokafka_producer_snippet_sends_keyed_events(kafka_bootstrap, unique):
    (snippet,) = [b for b in code_blocks("python") if "AIOKafkaProducer" in b]
    obs, labels = unique("obs"), unique("labels")
    await ensure_topics(kafka_bootstrap, {obs: 8, labels: 8})
    code = (
        snippet.replace("localhost:9092", kafka_bootstrap)
        .replace('"observations"', repr(obs))
        .replace('"labels"', repr(labels))
    )
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    async with TopicReader(kafka_bootstrap, obs) as reader:
        (record,) = await reader.read(1)
    assert record.key == b"station-7" and record.partition == partition_for(b"station-7", 8)
    assert orjson.loads(record.value)["id"] == 42
    async with TopicReader(kafka_bootstrap, labels) as reader:
        (label,) = await reader.read(1)
    assert orjson.loads(label.value) == {"id": 42, "y": 11}
