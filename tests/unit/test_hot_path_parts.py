"""The pure parts of the hot path: the merge of a partition's two topics, and live states."""

from __future__ import annotations

from streamlearn.learning.core import Learner
from streamlearn.learning.events import Observation
from streamlearn.learning.merge import Merge
from streamlearn.learning.models import load_candidates
from streamlearn.learning.state import PartitionStates, dumps_state


def test_a_head_record_waits_for_the_other_topic_until_it_is_caught_up_since_its_time():
    merge = Merge("obs", "labels", max_wait=10.0)
    merge.add("obs", [("o1", 100)])
    polled = {"labels": 99}  # the labels were last fetched before o1 was written

    def ready() -> list:
        return [r for r, _ in merge.ready(lambda t, since: polled[t] >= since, now=0.0)]

    assert ready() == []  # a label written before o1 could still come
    merge.add("labels", [("l0", 90)])
    assert ready() == ["l0"]  # it came; o1 waits again for a fetch after its own time
    polled["labels"] = 100
    assert ready() == ["o1"]


def test_a_head_record_goes_after_max_wait_and_ties_put_observations_first():
    merge = Merge("obs", "labels", max_wait=0.5)
    merge.add("labels", [("l1", 5)])

    def never(topic: str, since: float) -> bool:
        return False

    assert list(merge.ready(never, now=1.0)) == []
    assert [r for r, _ in merge.ready(never, now=1.6)] == ["l1"]
    merge.add("labels", [("l2", 7)])
    merge.add("obs", [("o2", 7)])
    # equal times: the observation first; then l2 alone waits for the observations again
    assert [r for r, _ in merge.ready(never, now=2.0)] == ["o2"]
    merge.clear()
    assert len(merge) == 0


def test_live_states_load_once_and_only_clean_ones_are_evicted():
    learner = Learner(load_candidates(["linear-regression"]))
    stored = learner.new_state()
    learner.observe(stored, "a", Observation(1, {"v": 1.0}, 0.0))
    loads = []
    states = PartitionStates(lambda key: loads.append(key) or dumps_state(stored), size=2)
    assert states.get(b"a").pending.keys() == {1} and states.get(b"a") is states.get(b"a")
    assert loads == [b"a"]  # unpickled once, then kept live
    states.put(b"b", learner.new_state())
    states.put(b"c", learner.new_state())
    states.put(b"d", learner.new_state())
    assert set(states.live) == {b"a", b"b", b"c", b"d"}  # b, c, d are not written yet: kept
    states.take_cut()
    assert states.cut.keys() == {b"b", b"c", b"d"} and not states.dirty
    assert not states.pickle_cut(10)
    states.put(b"a", states.get(b"a"))  # changed after the cut: not written by this one
    states.cut_written()
    # Two over the size: the two least recent clean ones go; a, changed since the cut, stays.
    assert list(states.live) == [b"d", b"a"] and states.dirty == {b"a"}


def test_a_state_the_intake_changes_during_a_checkpoint_is_written_as_of_the_cut():
    learner = Learner(load_candidates(["linear-regression"]))
    states = PartitionStates(lambda key: None, size=10)
    for key in (b"a", b"b"):
        state = learner.new_state()
        learner.observe(state, key.decode(), Observation(1, {"v": 1.0}, 0.0))
        state.offsets["o"] = 7
        states.put(key, state)
    at_cut = {key: dumps_state(states.live[key]) for key in (b"a", b"b")}
    states.take_cut()
    assert states.pickle_cut(1)  # one pickled in the background, one still to go
    for key in (b"a", b"b"):  # the next events change both before the rest is pickled
        state = states.get(key)
        learner.observe(state, key.decode(), Observation(2, {"v": 2.0}, 1.0))
        state.offsets["o"] = 8
        states.put(key, state)
    assert not states.pickle_cut(10)
    assert {key: w.value for key, w in states.cut.items()} == at_cut
    assert {w.observations for w in states.cut.values()} == {7}
    assert states.dirty == {b"a", b"b"}  # the next checkpoint writes them as they are now


def test_the_bytes_held_are_the_live_states_pickled_sizes_as_last_read_or_cut():
    learner = Learner(load_candidates(["linear-regression"]))
    stored = dumps_state(learner.new_state())
    states = PartitionStates(lambda key: stored if key == b"old" else None, size=1)
    states.get(b"old")
    assert states.held == len(stored)  # read from the store
    states.put(b"new", learner.new_state())
    assert states.held == len(stored)  # not checkpointed yet: it counts 0
    states.take_cut()
    assert not states.pickle_cut(10)
    new = len(states.cut[b"new"].value)
    assert states.held == len(stored) + new
    states.cut_written()  # one over the size: the least recent clean state goes, and its bytes
    assert list(states.live) == [b"new"] and states.held == new
