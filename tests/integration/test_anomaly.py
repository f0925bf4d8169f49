"""Anomaly detectors on the real broker: per key, the scores and flags equal River's own
detector and quantile filter run over that key's observations in order, through a clean
restart, a restart from the changelog alone (data dir wiped) and a crash (kill -9); labels
sent to such an app are dead letters. And drift on the broker as the learning core has it."""

from __future__ import annotations

import shutil

import orjson
import pytest
from river import anomaly

from streamlearn.learning.core import Learner
from streamlearn.learning.drift import DriftWatch
from streamlearn.learning.events import Label, Observation
from streamlearn.learning.models import load_candidates, load_factory
from streamlearn.testing import TopicReader, produce, until
from tests.integration.conftest import rounds_of_predict_then_learn
from tests.oracle import per_key_scores, station_rows
from tests.unit.test_drift import shifting_rows

SPEC = "half-space-trees"
QUANTILE = 0.9


def expected_flags(rows) -> dict[str, list[bool]]:
    """River's `QuantileFilter` (detector left unprotected) over each key's observations."""
    filters: dict = {}
    flags: dict[str, list[bool]] = {}
    for key, x in rows:
        flt = filters.setdefault(key, anomaly.QuantileFilter(load_factory(SPEC)(), QUANTILE, False))
        flags.setdefault(key, []).append(flt.classify(flt.score_one(x)))
        flt.learn_one(x)
    return flags


def ids(records: list) -> set:
    """The distinct `(key, id)` of prediction records read so far."""
    return {(r.key, orjson.loads(r.value)["id"]) for r in records}


def first_of_each(values: list[dict]) -> dict[str, list[dict]]:
    """Each key's records in order, one per id: a duplicate left by the crash must be identical."""
    seen: dict = {}
    by_key: dict[str, list[dict]] = {}
    for value in values:
        known = seen.setdefault((value["key"], value["id"]), value)
        if known is value:
            by_key.setdefault(value["key"], []).append(value)
        else:
            assert value == known  # the crash re-sent it: the very same record
    return by_key


async def test_scores_equal_rivers_detector_per_key_through_restarts_and_a_crash(
    kafka_bootstrap, topics, workers
):
    rows = station_rows(keys=4, n=240)
    events = [(topics.observations, key, {"id": i, "x": x, "ts": float(i)})
              for i, (key, x) in enumerate(rows)]  # fmt: skip
    parts = [events[:300], events[300:600], events[600:]]
    worker = workers.make(
        model=SPEC,
        extra_args=("--anomaly-quantile", str(QUANTILE), "--checkpoint-interval", "0.5"),
    )
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        worker.start()
        await produce(kafka_bootstrap, parts[0])
        await until(lambda: worker.counters()["learned"] == len(parts[0]), 120)
        assert worker.stop() == 0

        shutil.rmtree(worker.data_dir)  # the state must come back from the changelog alone
        worker.start()
        await produce(kafka_bootstrap, parts[1])
        await until(lambda: worker.counters()["learned"] == len(parts[1]), 120)

        await produce(kafka_bootstrap, parts[2])
        await until(lambda: worker.counters()["learned"] >= len(parts[1]) + 100, 120)
        worker.kill()  # mid-stream: what the last checkpoint did not cover is read again
        worker.start()
        await workers.drained()
        await reader.wait_until(lambda records: len(ids(records)) == len(events), 120)
        values = reader.values()

    got = first_of_each(values)
    scores = per_key_scores(rows, load_factory(SPEC))
    flags = expected_flags(rows)
    assert set(got) == set(scores)
    for key, records in got.items():
        assert [r["score"] for r in records] == scores[key]  # exactly: River's own scores
        assert [r["is_anomaly"] for r in records] == flags[key]
        assert [r["n_learned"] for r in records] == list(range(len(records)))
        assert any(flags[key])


async def test_labels_for_a_detector_are_dead_letters(kafka_bootstrap, topics, workers):
    worker = workers.start(model=SPEC)
    await produce(kafka_bootstrap, [
        (topics.observations, "s", {"id": 1, "x": {"level": 1.0}}),
        (topics.labels, "s", {"id": 1, "y": 2.0}),
    ])  # fmt: skip
    async with TopicReader(kafka_bootstrap, topics.dead_letters) as letters:
        await letters.read(1)
        [letter] = letters.values()
    assert letter["error"].startswith("unexpected-label: ") and letter["topic"] == topics.labels
    await until(lambda: worker.counters()["predicted"] == 1, 30)
    assert worker.counters()["learned"] == 1


async def test_drift_records_on_the_broker_equal_the_learning_core(
    kafka_bootstrap, topics, workers
):
    per_key = [[(f"k{k}", x, y + k) for _, x, y in shifting_rows(n=160, at=80)] for k in range(3)]
    rows = [row for round_ in zip(*per_key, strict=True) for row in round_]
    flags = ("--drift", "page-hinkley", "--on-drift", "reset")
    worker = workers.start(extra_args=flags)
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await rounds_of_predict_then_learn(kafka_bootstrap, topics, rows, worker, reader)
        values = reader.values()
    learner = Learner(load_candidates(["linear-regression"]), drift=DriftWatch(*flags[1::2]))
    states: dict = {}
    expected: dict[str, list] = {}
    for i, (key, x, y) in enumerate(rows):
        state = states.setdefault(key, learner.new_state())
        step = learner.observe(state, key, Observation(i, x, ts=0.0))
        expected.setdefault(key, []).append(step.prediction)
        learner.label(state, key, Label(i, y, ts=0.0))
    for key, predictions in expected.items():
        got = [v for v in values if v["key"] == key]
        assert [v.get("drift", {}).get("count") for v in got] == [
            p.drift["count"] if p.drift else None for p in predictions
        ]
        assert [v["y_pred"] for v in got] == pytest.approx([p.y_pred for p in predictions])
    assert any("drift" in v for v in values)
