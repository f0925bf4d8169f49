"""The pure parts of the hot path: the merge of a partition's two topics, and live states."""

from __future__ import annotations

from streamlearn.learning.core import Learner
from streamlearn.learning.events import Observation
from streamlearn.learning.merge import Merge, Other
from streamlearn.learning.models import load_candidates
from streamlearn.learning.state import PartitionStates, dumps_state


def test_a_head_record_waits_for_the_other_topic_until_it_is_caught_up_since_its_time():
    merge = Merge("obs", "labels", max_wait=10.0)
    merge.add("obs", [("o1", 100)])
    polled = {"labels": 99}  # the labels were last fetched to their end before o1's time

    def ready() -> list:
        def where(topic: str, since: float) -> Other:
            return Other.CAUGHT_UP if polled[topic] >= since else Other.AT_END

        return [r for r, _ in merge.ready(where, now=0.0)]

    assert ready() == []  # a label written before o1 could still come
    merge.add("labels", [("l0", 90)])
    assert ready() == ["l0"]  # it came; o1 waits again for a fetch after its own time
    polled["labels"] = 100
    assert ready() == ["o1"]


def test_a_head_record_goes_after_max_wait_and_ties_put_observations_first():
    merge = Merge("obs", "labels", max_wait=0.5)
    merge.add("labels", [("l1", 5)])

    def at_end(topic: str, since: float) -> Other:
        return Other.AT_END

    assert list(merge.ready(at_end, now=1.0)) == []
    assert [r for r, _ in merge.ready(at_end, now=1.6)] == ["l1"]
    merge.add("labels", [("l2", 7)])
    merge.add("obs", [("o2", 7)])
    # equal times: the observation first; then l2 alone waits for the observations again
    assert [r for r, _ in merge.ready(at_end, now=2.0)] == ["o2"]
    merge.clear()
    assert len(merge) == 0


def test_records_the_other_topic_holds_are_waited_for_past_max_wait_until_it_stalls():
    """A worker just (re)started or sought back, whose other topic's first fetch comes late:
    its records are in the log, and a re-read would merge them, so they are waited for."""
    merge = Merge("obs", "labels", max_wait=0.5, stalled_wait=30.0)
    stands = {"labels": Other.BEHIND}

    def ready(now: float) -> list:
        return [r for r, _ in merge.ready(lambda topic, since: stands[topic], now=now)]

    merge.add("obs", [("o1", 100), ("o2", 101)])
    assert ready(0.0) == []
    assert ready(29.0) == []  # far past max_wait
    merge.add("labels", [("l0", 99)])  # the labels' fetch came, to their end: merged by time
    stands["labels"] = Other.CAUGHT_UP
    assert ready(29.5) == ["l0", "o1", "o2"]
    assert not merge.stalled

    stands["labels"] = Other.BEHIND  # more labels in the log, which never come
    merge.add("obs", [("o3", 200), ("o4", 201)])
    assert ready(30.0) == []
    assert ready(60.0) == ["o3", "o4"]  # stalled: no longer waited for ...
    assert merge.stalled
    merge.add("obs", [("o5", 300)])
    assert ready(60.1) == ["o5"]  # ... while it stays behind
    stands["labels"] = Other.AT_END  # fetched to its end again: waited for as before
    merge.add("obs", [("o6", 400)])
    assert ready(61.0) == [] and not merge.stalled


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
