"""Warm start without a broker: sealed states, what a worker does with them, snapshot files."""

from __future__ import annotations

import pickle

import orjson
import pytest

from streamlearn.errors import ConfigError
from streamlearn.learning.core import Learner
from streamlearn.learning.events import Label, Observation
from streamlearn.learning.models import load_candidates
from streamlearn.learning.processor import Processor, Record
from streamlearn.learning.state import PartitionStates, dumps_state, loads_state
from streamlearn.settings import Topics
from streamlearn.snapshot import (
    DIGEST,
    KEEP,
    MAGIC,
    read_snapshot,
    reseal,
    seal,
    write_snapshot,
)
from tests.conftest import assert_one_line_error, run_cli

SECRET = b"s3cret"
SPECS = ["linear-regression", "knn-regression"]
UNPICKLED: list[str] = []


def learner() -> Learner:
    return Learner(load_candidates(SPECS))


def warmed(n: int = 12):
    """A key's state after `n` labels, as replay would leave it."""
    lr = learner()
    state = lr.new_state()
    for i in range(n):
        lr.observe(state, "k", Observation(i, {"a": float(i % 4)}, ts=float(i)))
        lr.label(state, "k", Label(i, float(i % 4) * 2, ts=float(i)))
    state.mark_applied("l", 10_000)  # replay's own offsets mean nothing to the app
    return state


def labels_record(offset: int, value: bytes, key: bytes = b"k") -> Record:
    return Record("labels", 0, offset, 0.0, key, value)


def processor(secret: bytes | None = SECRET) -> Processor:
    return Processor(learner(), Topics(), partitions=1, max_event_bytes=1024, secret=secret)


def dead_letter_error(outputs) -> str:
    assert [o.topic for o in outputs] == ["dead-letters"]
    return orjson.loads(outputs[0].value)["error"]


def test_a_loaded_state_predicts_next_what_replay_would_predict_next():
    state = dumps_state(warmed())
    expected = learner().observe(loads_state(state), "k", Observation(99, {"a": 3.0}, 99.0))
    proc, store = processor(), PartitionStates(lambda key: None, size=10)
    assert proc.process(labels_record(5, seal(SECRET, b"k", tuple(SPECS), state)), store) == []
    assert proc.counters.outcomes["loaded"] == 1 and store.live[b"k"].n_learned == 12
    assert store.live[b"k"].offsets == {"l": 5}  # the app's offsets, not replay's 10,000
    obs = Record(
        "observations", 0, 0, 0.0, b"k", orjson.dumps({"id": 99, "x": {"a": 3.0}, "ts": 99})
    )
    got = orjson.loads(proc.process(obs, store)[0].value)
    assert got == orjson.loads(expected.prediction.to_json())
    assert proc.process(labels_record(5, seal(SECRET, b"k", tuple(SPECS), state)), store) == []
    assert proc.counters.outcomes["redelivered"] == 1  # a re-read load is not applied twice


class Payload:
    """Unpickling it runs code: what a forged state would do."""

    def __reduce__(self):
        return UNPICKLED.append, ("ran",)


@pytest.mark.parametrize("secret", [SECRET, None])
def test_a_forged_or_unverifiable_state_is_dead_lettered_and_never_unpickled(secret):
    names = orjson.dumps(SPECS)
    body = KEEP + len(names).to_bytes(4, "big") + names + pickle.dumps(Payload())
    forged = MAGIC + b"\0" * DIGEST + body
    other = seal(b"other", b"k", tuple(SPECS), dumps_state(warmed()))
    moved = seal(
        SECRET, b"other-key", tuple(SPECS), dumps_state(warmed())
    )  # sealed for another key
    proc, store = processor(secret), PartitionStates(lambda key: None, size=10)
    for offset, value in enumerate([forged, other, moved]):
        assert dead_letter_error(proc.process(labels_record(offset, value), store)).startswith(
            "bad-signature: "
        )
    assert UNPICKLED == [] and not store.live


def test_a_key_with_state_keeps_it_unless_the_load_says_replace():
    proc, store = processor(), PartitionStates(lambda key: None, size=10)
    proc.process(labels_record(0, orjson.dumps({"id": 1, "y": 1.0, "x": {"a": 1.0}})), store)
    sealed = seal(SECRET, b"k", tuple(SPECS), dumps_state(warmed()))
    error = dead_letter_error(proc.process(labels_record(1, sealed), store))
    assert error.startswith("key-has-state: ") and store.live[b"k"].n_learned == 1
    assert proc.process(labels_record(2, reseal(SECRET, b"k", sealed, replace=True)), store) == []
    assert store.live[b"k"].n_learned == 12 and store.live[b"k"].offsets == {"l": 2}


def test_a_state_of_other_candidates_is_refused_unopened():
    proc, store = processor(), PartitionStates(lambda key: None, size=10)
    sealed = seal(SECRET, b"k", ("linear-regression",), pickle.dumps(Payload()))
    error = dead_letter_error(proc.process(labels_record(0, sealed), store))
    assert error.startswith("bad-state: ") and UNPICKLED == []  # refused before unpickling


def test_snapshot_file_round_trip_and_damage(tmp_path):
    path = tmp_path / "snap"
    entries = [(b"a", seal(SECRET, b"a", ("m",), dumps_state(warmed(1)))), (b"b", b"x" * 70)]
    assert write_snapshot(path, entries) == 2
    assert list(read_snapshot(path)) == entries
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ConfigError, match="cut short"):
        list(read_snapshot(path))
    path.write_text("id,y\n")
    with pytest.raises(ConfigError, match="not a streamlearn snapshot"):
        list(read_snapshot(path))


def test_save_and_load_refuse_in_one_line_without_the_secret_or_with_another(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("k,v,y\na,1,1\na,2,2\n")
    snap = tmp_path / "snap"
    flags = ["--key", "k", "--target", "y", "--save", str(snap)]
    ran = run_cli("replay", str(data), *flags, env={"STREAMLEARN_STATE_SECRET": ""})
    assert_one_line_error(ran)
    assert "STREAMLEARN_STATE_SECRET" in ran.stderr and not snap.exists()
    ran = run_cli("replay", str(data), *flags, env={"STREAMLEARN_STATE_SECRET": "one"})
    assert ran.code == 0 and "saved 1 key states to" in ran.stdout, ran.stderr
    for secret, says in [("", "load needs STREAMLEARN_STATE_SECRET"), ("two", "does not match")]:
        ran = run_cli("load", str(snap), "--broker", "127.0.0.1:1",
                      env={"STREAMLEARN_STATE_SECRET": secret})  # fmt: skip
        assert_one_line_error(ran)
        assert says in ran.stderr


def test_export_refuses_in_one_line_without_the_secret(tmp_path):
    ran = run_cli("export", str(tmp_path / "snap"), "--broker", "127.0.0.1:1",
                  env={"STREAMLEARN_STATE_SECRET": ""})  # fmt: skip
    assert_one_line_error(ran)
    assert "export needs STREAMLEARN_STATE_SECRET" in ran.stderr
