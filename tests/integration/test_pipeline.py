"""The worker on the real broker with RocksDB tables: the oracle, the join's edge cases,
bad input, and creme-style models."""

from __future__ import annotations

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streamlearn.kafka.partitioner import partition_for
from streamlearn.learning.models import load_factory
from streamlearn.testing import TopicReader, produce, until
from tests.integration.conftest import (
    PARTITIONS,
    predictions_by_key,
    rounds_of_predict_then_learn,
)
from tests.oracle import chick_rows, per_key_predictions, phishing_rows

OUTCOMES = ("predicted", "joined", "waiting", "duplicate", "redelivered", "rerouted",
            "dead_lettered")  # fmt: skip


def reconciles(counters: dict) -> bool:
    return counters["consumed"] == sum(counters[o] for o in OUTCOMES)


@pytest.mark.core
@pytest.mark.parametrize(
    ("preset", "rows", "classifier"),
    [("linear-regression", chick_rows, False), ("logistic-regression", phishing_rows, True)],
)
async def test_predictions_equal_river_progressive_validation_per_key(
    kafka_bootstrap, topics, workers, preset, rows, classifier
):
    data = rows()
    worker = workers.start(model=preset)
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await rounds_of_predict_then_learn(kafka_bootstrap, topics, data, worker, reader)
        values = reader.values()
    expected = per_key_predictions(data, load_factory(preset), classifier)
    got = predictions_by_key(values)
    assert got.keys() == expected.keys()
    for key, predictions in expected.items():
        if classifier:
            assert got[key] == predictions
        else:
            assert got[key] == pytest.approx(predictions, abs=1e-9)
    for key in expected:  # each prediction says how many labels its model had learned
        assert [v["n_learned"] for v in values if v["key"] == key] == list(range(len(got[key])))
    if classifier:
        assert all(set(v["proba"]) <= {"true", "false"} for v in values[len(expected) :])
    assert worker.counters()["learned"] == len(data)


async def test_early_label_duplicate_label_label_with_features_and_expiry(
    kafka_bootstrap, topics, workers
):
    worker = workers.start(extra_args=("--horizon", "100"))
    count = worker.counters

    await produce(kafka_bootstrap, [(topics.labels, "a", {"id": 1, "y": 3.0, "ts": 0})])
    await until(lambda: count()["waiting"] == 1, 30)
    await produce(
        kafka_bootstrap, [(topics.observations, "a", {"id": 1, "x": {"v": 1.0}, "ts": 0})]
    )
    await until(lambda: count()["learned"] == 1, 30)  # learned right after the prediction

    await produce(kafka_bootstrap, [(topics.labels, "a", {"id": 1, "y": 3.0, "ts": 1})])
    await until(lambda: count()["duplicate"] == 1, 30)

    await produce(kafka_bootstrap, [(topics.labels, "b", {"id": 5, "y": 2.0, "x": {"v": 1.0}})])
    await until(lambda: count()["joined"] == 1, 30)

    # The clock moves to 150 once two observations in a row agree on it.
    await produce(kafka_bootstrap, [
        (topics.observations, "c", {"id": 1, "x": {"v": 1.0}, "ts": 0}),
        (topics.observations, "c", {"id": 2, "x": {"v": 1.0}, "ts": 150}),
        (topics.observations, "c", {"id": 3, "x": {"v": 1.0}, "ts": 151}),
    ])  # fmt: skip
    await until(lambda: count()["expired"] == 1, 30)

    await produce(kafka_bootstrap, [
        (topics.observations, "a", {"id": 2, "x": {"v": 1.0}, "ts": 2}),
        (topics.observations, "b", {"id": 6, "x": {"v": 1.0}}),
    ])  # fmt: skip
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await reader.read(6)
        last = {v["key"]: v for v in reader.values()}
    assert last["a"]["n_learned"] == 1 and last["a"]["y_pred"] != 0.0  # learned once, not twice
    assert last["b"]["n_learned"] == 1  # the label with x was learned without an observation
    final = count()
    assert (final["learned"], final["duplicate"], final["expired"]) == (2, 1, 1)
    assert reconciles(final)


async def test_bad_input_goes_to_dead_letters_and_the_worker_keeps_running(
    kafka_bootstrap, topics, workers
):
    worker = workers.start(
        model="tests.creme_model:Fussy", extra_args=("--max-event-bytes", "65536")
    )
    obs, labels = topics.observations, topics.labels
    bad = [
        (obs, "k", b"not json at all", "not-json"),
        (obs, "k", b"[1, 2, 3]", "not-object"),
        (obs, "k", {"x": {"v": 1.0}}, "bad-id"),
        (obs, "k", {"id": 1.5, "x": {"v": 1.0}}, "bad-id"),
        (obs, "k", {"id": 2, "x": [1, 2]}, "bad-features"),
        (obs, "k", b'{"id": 3, "x": {"v": NaN}}', "not-json"),
        (obs, "k", b'{"id": 4, "x": {"v": 1e999}}', "not-json"),
        (obs, None, {"id": 5, "x": {"v": 1.0}}, "missing-key"),
        (obs, "k", {"id": 6, "x": {"pad": "p" * (1024 * 1024)}}, "too-large"),
        (labels, "k", {"id": 7, "y": "seven"}, "bad-target"),
    ]
    await produce(kafka_bootstrap, [(t, k, v) for t, k, v, _ in bad])
    # A model that raises on a feature.
    await produce(kafka_bootstrap, [(labels, "m", {"id": 1, "y": 1.0, "x": {"boom": 1.0}})])
    await produce(kafka_bootstrap, [(obs, "ok", {"id": 1, "x": {"v": 1.0}})])

    async with TopicReader(kafka_bootstrap, topics.dead_letters) as reader:
        await reader.read(len(bad) + 1)
        letters = reader.values()
    errors = sorted(letter["error"].split(":")[0] for letter in letters)
    assert errors == sorted([reason for *_, reason in bad] + ["model-error"])
    for letter in letters:
        assert {"topic", "partition", "offset", "key", "error", "value"} <= letter.keys()
    big = next(letter for letter in letters if letter["error"].startswith("too-large"))
    assert big["truncated"] > 1024 * 1024 and big["topic"] == obs
    not_json = next(letter for letter in letters if letter["value"] == "not json at all")
    assert not_json["key"] == "k"

    await until(lambda: worker.counters()["predicted"] == 1, 30)  # still answering
    final = worker.counters()
    assert final["consumed"] == len(bad) + 2
    assert final["dead_lettered"] == len(bad) + 1
    assert reconciles(final)


async def test_creme_style_model_from_module_factory(kafka_bootstrap, topics, workers):
    worker = workers.start(model="tests.creme_model:CremeStyleMean")
    rows = [("k", {}, 2.0), ("k", {}, 4.0), ("k", {}, 9.0)]
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await rounds_of_predict_then_learn(kafka_bootstrap, topics, rows, worker, reader)
        assert [v["y_pred"] for v in reader.values()] == [0.0, 2.0, 3.0]
        assert {v["model"] for v in reader.values()} == {"tests.creme_model:CremeStyleMean"}


async def test_a_record_on_the_wrong_partition_still_meets_its_key(
    kafka_bootstrap, topics, workers
):
    """A producer with another partitioner (librdkafka's consistent_random) must not lose joins."""
    worker = workers.start()
    home = partition_for(b"station-7", PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        observation = orjson.dumps({"id": 1, "x": {"v": 1.0}})
        await producer.send_and_wait(
            topics.observations, observation, key=b"station-7", partition=(home + 1) % PARTITIONS
        )
    finally:
        await producer.stop()
    await produce(kafka_bootstrap, [(topics.labels, "station-7", {"id": 1, "y": 5.0})])
    await until(lambda: worker.counters()["learned"] == 1, 30)
    counters = worker.counters()
    assert counters["rerouted"] == 1 and counters["predicted"] == 1
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        (record,) = await reader.read(1)
    assert record.partition == home
