"""Export on the real broker: taken while events flow, loaded into a new app, every key
continues from its state as of a checkpoint: the same `n_learned` and the same next prediction
as replay over the key's first `n_learned` rows."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from streamlearn.kafka.broker import ensure_topics
from streamlearn.learning.core import Learner, Selection
from streamlearn.learning.events import Label, Observation
from streamlearn.learning.models import load_candidates
from streamlearn.learning.state import loads_state
from streamlearn.settings import Topics
from streamlearn.snapshot import read_snapshot, unseal
from streamlearn.testing import TopicReader, produce, until
from tests.conftest import run_cli
from tests.integration.conftest import Workers, rounds_of_predict_then_learn
from tests.oracle import chick_rows

SPECS = ("linear-regression", "knn-regression")
SECRET = {"STREAMLEARN_STATE_SECRET": "a shared secret"}
FLAGS = ("--select-min-labels", "2", "--checkpoint-interval", "0.2")
PROBE = {"time": 30, "diet": 1}


def expected_next(rows: list, key: str, n_learned: int) -> dict:
    """Replay of the key's first `n_learned` rows, then its prediction for the probe."""
    learner = Learner(load_candidates(SPECS), selection=Selection(0, 2))
    state = learner.new_state()
    mine = [(x, y) for k, x, y in rows if k == key][:n_learned]
    for i, (x, y) in enumerate(mine):
        learner.observe(state, key, Observation(i, x, ts=0.0))
        learner.label(state, key, Label(i, y, ts=0.0))
    step = learner.observe(state, key, Observation("probe", {**PROBE, "chick": int(key)}, 0.0))
    return orjson.loads(step.prediction.to_json())


async def test_an_export_while_events_flow_loads_into_a_new_app_as_of_a_checkpoint(
    kafka_bootstrap, topics, workers, tmp_path, unique, partitions
):
    rows = chick_rows()
    first, rest = rows[: len(rows) // 2], rows[len(rows) // 2 :]
    source = workers.start(model=",".join(SPECS), extra_args=FLAGS, env=SECRET)
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await rounds_of_predict_then_learn(kafka_bootstrap, topics, first, source, reader)
    flowing = []
    for i, (key, x, y) in enumerate(rest, start=len(first)):
        flowing += [
            (topics.observations, key, {"id": i, "x": x}),
            (topics.labels, key, {"id": i, "y": y}),
        ]
    sending = asyncio.create_task(produce(kafka_bootstrap, flowing))
    snapshot = tmp_path / "export.snapshot"
    exported = await asyncio.to_thread(
        run_cli, "export", str(snapshot), "--broker", kafka_bootstrap, "--app-id",
        workers.app_id, "--labels-topic", topics.labels, "--observations-topic",
        topics.observations, "--model", ",".join(SPECS), env=SECRET,
    )  # fmt: skip
    await sending
    assert exported.code == 0, exported.stderr
    secret = SECRET["STREAMLEARN_STATE_SECRET"].encode()
    states = {
        k.decode(): loads_state(unseal(secret, k, v).state) for k, v in read_snapshot(snapshot)
    }
    assert len(states) == len({key for key, _, _ in rows})
    halfway = {key: sum(k == key for k, _, _ in first) for key in states}
    assert all(states[key].n_learned >= halfway[key] for key in states)
    await until(lambda: source.counters()["learned"] == len(rows), 120)

    target_topics = Topics.with_prefix(unique("t") + ".")
    await ensure_topics(kafka_bootstrap, dict.fromkeys(target_topics.names(), partitions))
    target = Workers(kafka_bootstrap, target_topics, tmp_path / "b", unique("app"), partitions)
    try:
        worker = target.start(model=",".join(SPECS), extra_args=FLAGS, env=SECRET)
        loaded = run_cli("load", str(snapshot), "--broker", kafka_bootstrap,
                         "--labels-topic", target_topics.labels, env=SECRET)  # fmt: skip
        assert loaded.code == 0, loaded.stderr
        await until(lambda: worker.counters()["loaded"] == len(states), 60)
        probes = [
            (target_topics.observations, key, {"id": "probe", "x": {**PROBE, "chick": int(key)}})
            for key in states
        ]
        await produce(kafka_bootstrap, probes)
        async with TopicReader(kafka_bootstrap, target_topics.predictions) as reader:
            await reader.read(len(probes))
            got = {v["key"]: v for v in reader.values()}
    finally:
        target.stop_all()
    for key, state in states.items():
        expected = expected_next(rows, key, state.n_learned)
        assert got[key]["n_learned"] == state.n_learned == expected["n_learned"]
        assert got[key]["model"] == expected["model"]
        assert got[key]["candidates"] == pytest.approx(expected["candidates"], abs=1e-9)
