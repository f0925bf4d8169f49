"""A key whose state outgrows what the broker takes as one record: the worker says so and
stops, instead of re-reading the same records for ever and re-sending their predictions."""

from __future__ import annotations

from streamlearn.testing import group_lag, produce, until

PAIRS = 20  # the Hoarder's state passes the local broker's 4 MiB after 17 labels


async def test_a_state_too_big_for_one_record_stops_the_worker_with_one_error_line(
    kafka_bootstrap, topics, workers
):
    worker = workers.start(
        model="tests.creme_model:Hoarder", extra_args=("--checkpoint-interval", "0.5")
    )
    records = []
    for i in range(PAIRS):
        records.append((topics.observations, "big", {"key": "big", "id": i, "x": {"a": 1.0}}))
        records.append((topics.labels, "big", {"key": "big", "id": i, "y": 1.0}))
    await produce(kafka_bootstrap, records)
    await until(lambda: not worker.running(), timeout=60)
    log = worker.log()
    assert worker.process.returncode == 1
    errors = [line for line in log.splitlines() if line.startswith("streamlearn: error:")]
    assert len(errors) == 1, log[-3000:]
    assert "the state of key 'big' is" in errors[0]
    assert f"topic {workers.app_id}-state-changelog" in errors[0]
    assert "Traceback" not in log
    # Nothing was committed: every record is read again once the limit or the model changes.
    inputs = [topics.observations, topics.labels]
    assert await group_lag(kafka_bootstrap, workers.app_id, inputs) == 2 * PAIRS
