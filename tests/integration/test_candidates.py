"""Several candidates per key on the real broker: the worker serves each key's leader, names it,
and carries every candidate's prediction, as replay and River's progressive validation say,
through a restart and a partition move."""

from __future__ import annotations

import orjson
import pytest

from streamlearn.commands.replay import replay_events
from streamlearn.learning.core import Learner, Selection
from streamlearn.learning.models import load_candidates, load_factory
from streamlearn.source import Event
from streamlearn.testing import TopicReader
from tests.integration.conftest import rounds_of_predict_then_learn
from tests.oracle import chick_rows, per_key_predictions, served_by_rule

SPECS = ("linear-regression", "knn-regression")
MIN_LABELS = 2


class Pool:
    """The summed counters of several workers, for `rounds_of_predict_then_learn`."""

    def __init__(self, *workers) -> None:
        self.workers = workers

    def counters(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for worker in self.workers:
            for name, count in worker.counters().items():
                totals[name] = totals.get(name, 0) + count
        return totals


def events_in_rounds(rows: list, first_id: int) -> list[Event]:
    """The events of `rounds_of_predict_then_learn`, in the order the worker applies them."""
    by_key: dict[str, list] = {}
    for i, (key, x, y) in enumerate(rows, start=first_id):
        by_key.setdefault(key, []).append((i, x, y))
    out = []
    for r in range(max(len(v) for v in by_key.values())):
        batch = [(key, *events[r]) for key, events in by_key.items() if r < len(events)]
        out += [Event("observation", k, {"id": i, "x": x}) for k, i, x, _ in batch]
        out += [Event("label", k, {"id": i, "y": y}) for k, i, _, y in batch]
    return out


async def test_worker_serves_each_keys_leader_through_a_restart_and_a_partition_move(
    kafka_bootstrap, topics, workers
):
    rows = chick_rows()
    thirds = [rows[: len(rows) // 3], rows[len(rows) // 3 : 2 * len(rows) // 3]]
    thirds.append(rows[2 * len(rows) // 3 :])
    flags = ("--select-min-labels", str(MIN_LABELS))
    w1 = workers.make("w1", model=",".join(SPECS), extra_args=flags)
    w2 = workers.make("w2", model=",".join(SPECS), extra_args=flags)
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        w1.start()
        await rounds_of_predict_then_learn(kafka_bootstrap, topics, thirds[0], w1, reader)
        assert w1.stop() == 0
        w1.start()  # a restart: every key's candidates come back from the local state
        await rounds_of_predict_then_learn(
            kafka_bootstrap, topics, thirds[1], w1, reader, first_id=len(thirds[0])
        )
        w2.start()  # a partition move: half the keys go to w2 with their candidates
        first_id = len(thirds[0]) + len(thirds[1])
        await rounds_of_predict_then_learn(
            kafka_bootstrap, topics, thirds[2], Pool(w1, w2), reader, first_id=first_id
        )
        values = reader.values()
    assert len(values) == len(rows)
    assert w2.counters()["predicted"] > 0  # the move happened: w2 served some keys

    # The oracle: each candidate is River's progressive validation on the key's sub-stream,
    # and the served prediction is the leader's by the stated rule.
    expected = {spec: per_key_predictions(rows, load_factory(spec)) for spec in SPECS}
    served = served_by_rule(rows, expected, window=0, min_labels=MIN_LABELS)
    got: dict[str, list[dict]] = {}
    for value in values:
        got.setdefault(value["key"], []).append(value)
    for key, records in got.items():
        assert [r["model"] for r in records] == [name for name, _ in served[key]], key
        assert [r["y_pred"] for r in records] == pytest.approx([p for _, p in served[key]])
        for spec in SPECS:
            assert [r["candidates"][spec] for r in records] == pytest.approx(expected[spec][key])
    assert sum(len({r["model"] for r in records}) > 1 for records in got.values()) > 0

    # Replay of the same events in the same order gives the same records.
    learner = Learner(load_candidates(SPECS), selection=Selection(0, MIN_LABELS))
    offline: list[bytes] = []
    events = []
    first_id = 0
    for part in thirds:
        events += events_in_rounds(part, first_id)
        first_id += len(part)
    replay_events(events, learner, on_prediction=offline.append)
    online = {(v["key"], v["id"]): v for v in values}
    for line in offline:
        record = orjson.loads(line)
        live = online[(record["key"], record["id"])]
        assert (live["model"], live["n_learned"]) == (record["model"], record["n_learned"])
        assert live["candidates"] == pytest.approx(record["candidates"], abs=1e-9)
