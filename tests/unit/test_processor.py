"""Record processing without Kafka: routing, redelivery, dead letters and counters."""

from __future__ import annotations

import orjson
import pytest

from streamlearn.kafka.partitioner import partition_for
from streamlearn.learning.core import Learner
from streamlearn.learning.models import load_candidates
from streamlearn.learning.processor import Processor, Record
from streamlearn.learning.state import PartitionStates, dumps_state
from streamlearn.settings import Topics

TOPICS = Topics()
PARTITIONS = 4


@pytest.fixture
def processor() -> Processor:
    learner = Learner(load_candidates(["linear-regression"]))
    return Processor(learner, TOPICS, PARTITIONS, max_event_bytes=1024)


def record(topic: str, key: bytes | None, value, offset: int, partition: int | None = None):
    raw = value if isinstance(value, bytes) or value is None else orjson.dumps(value)
    home = partition_for(key, PARTITIONS) if key else 0
    return Record(topic, home if partition is None else partition, offset, 1000.0, key, raw)


def memory(table: dict | None = None) -> PartitionStates:
    return PartitionStates((table or {}).get, size=10)


def test_predict_then_learn_changes_one_state_per_key(processor):
    store = memory()
    out = processor.process(record("observations", b"k", {"id": 1, "x": {"a": 1.0}}, 0), store)
    assert [o.topic for o in out] == ["predictions"]
    prediction = orjson.loads(out[0].value)
    assert prediction == {
        "key": "k", "id": 1, "y_pred": 0.0, "model": "linear-regression", "n_learned": 0,
        "ts": 1000.0,
    }  # fmt: skip
    assert processor.process(record("labels", b"k", {"id": 1, "y": 2.0}, 0), store) == []
    assert store.dirty == {b"k"} and store.live[b"k"].n_learned == 1


def test_a_record_on_the_wrong_partition_is_sent_to_its_key_partition(processor):
    home = partition_for(b"k", PARTITIONS)
    wrong = (home + 1) % PARTITIONS
    store = memory()
    out = processor.process(record("labels", b"k", {"id": 1, "y": 2.0}, 7, wrong), store)
    assert len(out) == 1 and (out[0].topic, out[0].partition, out[0].key) == ("labels", home, b"k")
    assert not store.live  # not joined on the wrong partition
    assert processor.counters.outcomes["rerouted"] == 1


def test_a_redelivered_record_is_not_applied_twice(processor):
    store = memory()
    obs = record("observations", b"k", {"id": 1, "x": {"a": 1.0}}, 5)
    first = processor.process(obs, store)
    # as after a restart: the state comes back from its pickle, then the record comes again
    store = memory({b"k": dumps_state(store.live[b"k"])})
    again = processor.process(obs, store)
    assert again == first  # the prediction is re-sent, identical, in case the crash lost it
    label = record("labels", b"k", {"id": 1, "y": 2.0}, 3)
    processor.process(label, store)
    assert processor.process(label, store) == []
    assert store.get(b"k").n_learned == 1
    assert processor.counters.outcomes["redelivered"] == 2


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"k", b"{not json", "not-json"),
        (b"k", b"[]", "not-object"),
        (b"k", {"x": {}}, "bad-id"),
        (b"k", {"id": 1, "x": 3}, "bad-features"),
        (None, {"id": 1, "x": {}}, "missing-key"),
        (b"k", {"id": 1, "x": {"pad": "a" * 2000}}, "too-large"),
    ],
)
def test_bad_records_become_dead_letters_with_the_original(processor, key, value, reason):
    rec = record("observations", key, value, 11)
    out = processor.process(rec, memory())
    assert [o.topic for o in out] == ["dead-letters"]
    letter = orjson.loads(out[0].value)
    assert letter["error"].startswith(reason + ":")
    assert (letter["topic"], letter["offset"], letter["value"]) == (
        "observations", 11, rec.value.decode(),
    )  # fmt: skip
    assert processor.counters.outcomes["dead_lettered"] == 1


def test_counters_reconcile_with_what_was_consumed(processor):
    store = memory()
    records = [
        record("observations", b"a", {"id": 1, "x": {"v": 1.0}}, 0),
        record("labels", b"a", {"id": 1, "y": 1.0}, 0),
        record("labels", b"a", {"id": 1, "y": 1.0}, 1),  # duplicate
        record("labels", b"b", {"id": 9, "y": 1.0}, 0),  # waiting
        record("labels", b"b", {"id": 2, "y": "nope"}, 1),  # dead letter: regressor target
        record("observations", b"b", {"id": 9, "x": {"v": 2.0}}, 0),  # predicted + learned
    ]
    for rec in records:
        processor.process(rec, store)
    counts = processor.counters.as_dict()
    outcomes = ("predicted", "joined", "waiting", "duplicate", "redelivered", "rerouted",
                "dead_lettered")  # fmt: skip
    assert counts["consumed"] == len(records) == sum(counts[o] for o in outcomes)
    assert (counts["predicted"], counts["joined"], counts["waiting"]) == (2, 1, 1)
    assert (counts["duplicate"], counts["dead_lettered"], counts["learned"]) == (1, 1, 2)


@pytest.mark.parametrize(
    ("key", "written", "key_encoding"),
    [
        (b"\xff\xfe", "//4=", "base64"),  # not UTF-8: base64, and the letter says so
        ((42).to_bytes(8, "big"), "\x00" * 7 + "*", None),  # UTF-8 with controls: text as is
    ],
)
def test_a_dead_letter_says_when_its_key_is_base64(processor, key, written, key_encoding):
    out = processor.process(record("observations", key, {"id": 1, "x": {}}, 4), memory())
    letter = orjson.loads(out[0].value)
    assert letter["error"].startswith("bad-key:")
    assert (out[0].key, letter["key"], letter.get("key_encoding")) == (key, written, key_encoding)
    assert "encoding" not in letter  # the value was UTF-8
