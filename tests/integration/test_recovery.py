"""State survives: a clean restart, a restart with the data dir wiped, and a crash (kill -9)."""

from __future__ import annotations

import shutil

import pytest

from streamlearn.learning.models import load_factory
from streamlearn.testing import TopicReader, produce, until
from tests.integration.conftest import (
    check_probes,
    labels_with_features,
    predictions_by_key,
    probes_for,
    rounds_of_predict_then_learn,
)
from tests.oracle import chick_rows, per_key_predictions


@pytest.mark.core
async def test_restart_with_same_and_with_wiped_data_dir_continues_exactly(
    kafka_bootstrap, topics, workers
):
    rows = chick_rows()
    thirds = [rows[: len(rows) // 3], rows[len(rows) // 3 : 2 * len(rows) // 3]]
    thirds.append(rows[2 * len(rows) // 3 :])
    worker = workers.make()
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        first_id = 0
        for phase, part in enumerate(thirds):
            if phase == 2:
                shutil.rmtree(worker.data_dir)  # state must come back from the changelog alone
            worker.start()
            await rounds_of_predict_then_learn(
                kafka_bootstrap, topics, part, worker, reader, first_id=first_id
            )
            first_id += len(part)
            assert worker.stop() == 0
        values = reader.values()
    # Uninterrupted, the worker equals River's progressive validation (the oracle test).
    expected = per_key_predictions(rows, load_factory("linear-regression"))
    got = predictions_by_key(values)
    for key, predictions in expected.items():
        assert got[key] == pytest.approx(predictions, abs=1e-9), key


@pytest.mark.core
async def test_kill_9_mid_stream_neither_loses_nor_repeats_a_label(
    kafka_bootstrap, topics, workers
):
    keys, per_key = 20, 400
    labels = labels_with_features(keys, per_key)
    await produce(kafka_bootstrap, [(topics.labels, key, value) for key, value in labels])
    worker = workers.start(extra_args=("--session-timeout", "8"))
    await until(lambda: worker.counters()["joined"] >= len(labels) // 4, 120)
    worker.kill()
    worker.start()
    await workers.drained()  # every label learned before the probes (topics are not ordered)

    probes = probes_for(topics, keys)
    await produce(kafka_bootstrap, probes)
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await reader.read(keys, timeout=120)
        got = {v["key"]: v for v in reader.values()}
    after = worker.counters()
    assert after["joined"] > 0  # the kill came mid-stream: the new process had labels left

    check_probes(labels, probes, got)
