"""The benchmark's Python peers drain a tiny backlog on the test broker and answer every
observation, so their side of `python -m bench` cannot rot.

`bench.peers.drain` itself fails when a peer's predictions topic holds fewer records than the
backlog has pairs, or when the peer learned fewer labels; here each prediction's id is checked
too. The Quix Streams peer needs the `bench` extra (`pip install -e '.[bench]'`, which the test
extra includes) and is skipped only without it.
"""

from __future__ import annotations

import asyncio

import pytest

from bench.cluster import fresh_topics, produce_backlog
from bench.e2e import Target
from bench.peers import PeerDrain, drain, peer
from bench.workload import make_workload
from streamlearn.testing import TopicReader

KEYS, PAIRS, PARTITIONS = 20, 400, 2
MODEL = "linear-regression"


@pytest.fixture(scope="module")
def backlog(kafka_bootstrap) -> Target:
    """One small backlog in fresh topics, shared by the peers as in the bench."""
    workload = make_workload(MODEL, KEYS, PAIRS, label_delay=10)
    assert workload.pairs == PAIRS
    topics = fresh_topics(kafka_bootstrap, PARTITIONS)
    asyncio.run(produce_backlog(kafka_bootstrap, topics, workload.encoded()))
    return Target(kafka_bootstrap, topics, MODEL, PARTITIONS)


def test_the_aiokafka_loop_answers_every_observation(backlog, tmp_path):
    run = drain(peer("aiokafka_loop"), backlog, PAIRS, tmp_path, timeout=120)
    assert_every_prediction(backlog.bootstrap, run)


def test_the_quix_streams_peer_answers_every_observation(backlog, tmp_path):
    pytest.importorskip("quixstreams", reason="the bench extra is not installed")
    run = drain(peer("quix"), backlog, PAIRS, tmp_path, timeout=120)
    assert_every_prediction(backlog.bootstrap, run)


def assert_every_prediction(bootstrap: str, run: PeerDrain) -> None:
    assert run.predictions == PAIRS and run.pps > 0 and run.seconds > 0

    async def read() -> list[dict]:
        async with TopicReader(bootstrap, run.topic) as reader:
            await reader.read(PAIRS)
            return reader.values()

    predictions = asyncio.run(read())
    assert sorted(p["id"] for p in predictions) == list(range(PAIRS))
    assert all(isinstance(p["y_pred"], float) for p in predictions)
