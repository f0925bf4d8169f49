"""The merge of a partition's observations and labels (learning/merge.py) on a real broker.

A prediction's `n_learned` says how many of its key's labels came before it. Merged by record
time, that is the count of the key's labels sent before the observation, however late a topic's
records are fetched: else a re-read after a crash, which finds both topics in the log, would
re-send the prediction with other numbers.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from streamlearn.source import Columns, to_events
from streamlearn.testing import TopicReader
from tests.integration.conftest import with_faults
from tests.integration.test_scale_out import send

KEYS, ROUNDS = 16, 3


def stream() -> list[tuple[str, str, dict]]:
    """Rounds of one observation per key, each label sent 8 observations after its own: from
    the second round on, an observation comes after its key's label of the round before."""
    rows = [{"key": f"key-{k}", "a": float(i), "y": float(i + k)}
            for i in range(ROUNDS) for k in range(KEYS)]  # fmt: skip
    return [(e.kind, e.key, e.value) for e in to_events(rows, Columns("key", "y"), delay=8)]


def learned_before_each_observation(events: list[tuple[str, str, dict]]) -> dict[tuple, int]:
    """`(key, id)` of each observation -> its key's labels sent before it."""
    labels: Counter = Counter()
    expected = {}
    for kind, key, value in events:
        if kind == "label":
            labels[key] += 1
        else:
            expected[(key, value["id"])] = labels[key]
    return expected


async def test_labels_fetched_seconds_late_are_merged_by_time_not_by_arrival(
    kafka_bootstrap, topics, workers
):
    """Failed before the merge waited for records the other topic holds: the labels' first
    fetch came after --merge-wait (then 0.5 s), and one observation per partition and wait
    went on without them."""
    events = stream()
    await asyncio.to_thread(send, kafka_bootstrap, topics, events)
    late = with_faults(STREAMLEARN_TEST_SLOW_TOPIC=f"{topics.labels}:6")
    worker = workers.start("w1", env=late)
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await reader.wait_until(lambda records: len(records) >= KEYS * ROUNDS, 120)
        values = reader.values()
    assert f"fault injected: {topics.labels} is fetched 6 s after" in worker.log()
    got = {(v["key"], v["id"]): v["n_learned"] for v in values}
    expected = learned_before_each_observation(events)
    assert sum(n > 0 for n in expected.values()) == KEYS * (ROUNDS - 1)
    wrong = {k: (got[k], n) for k, n in expected.items() if got.get(k) != n}
    assert not wrong, (
        f"{len(wrong)} predictions not in record-time order, e.g. {list(wrong.items())[:3]}"
    )
