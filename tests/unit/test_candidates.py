"""Several candidate models per key: each against River's progressive validation, the served one
by the selection rule, the records, names, old states, and what replay reports (no broker)."""

from __future__ import annotations

import pickle

import orjson
import pytest

from streamlearn.commands.replay import replay_events
from streamlearn.errors import ModelError
from streamlearn.learning.core import KeyState, Learner, Selection
from streamlearn.learning.events import Label, Observation
from streamlearn.learning.models import Candidate, load_candidates, load_factory
from streamlearn.learning.processor import Processor, Record
from streamlearn.learning.state import PartitionStates, dumps_state, loads_state
from streamlearn.settings import Topics
from streamlearn.source import Event
from tests.creme_model import Fussy, ten, zero
from tests.oracle import chick_rows, per_key_predictions, phishing_rows, served_by_rule


def run(learner: Learner, rows) -> dict[str, list[dict]]:
    """Predict then learn every row, in order; each key's prediction records."""
    states: dict = {}
    out: dict[str, list[dict]] = {}
    for i, (key, x, y) in enumerate(rows):
        state = states.setdefault(key, learner.new_state())
        step = learner.observe(state, key, Observation(i, x, ts=float(i)))
        out.setdefault(key, []).append(orjson.loads(step.prediction.to_json()))
        assert learner.label(state, key, Label(i, y, ts=float(i))).outcome == "joined"
    return out


@pytest.mark.parametrize(("window", "min_labels"), [(0, 0), (0, 5), (8, 3)])
@pytest.mark.parametrize(
    ("specs", "rows", "classifier"),
    [
        (["linear-regression", "knn-regression"], chick_rows, False),
        (["logistic-regression", "tests.creme_model:naive_bayes"], phishing_rows, True),
    ],
)
def test_each_candidate_is_river_progressive_validation_and_the_leader_serves(
    specs, rows, classifier, window, min_labels
):
    data = rows()
    learner = Learner(load_candidates(specs), selection=Selection(window, min_labels))
    ours = run(learner, data)
    expected = {spec: per_key_predictions(data, load_factory(spec), classifier) for spec in specs}
    served = served_by_rule(data, expected, window, min_labels, classifier)
    switches = 0
    for key, records in ours.items():
        for spec in specs:
            got = [r["candidates"][spec] for r in records]
            assert got == pytest.approx(expected[spec][key], abs=1e-9)
        assert [r["model"] for r in records] == [name for name, _ in served[key]]
        assert [r["y_pred"] for r in records] == pytest.approx(
            [y_pred for _, y_pred in served[key]], abs=1e-9
        )
        switches += len({r["model"] for r in records}) > 1
    assert switches > 0  # the rule was exercised: some key changed its leader


def test_one_model_keeps_the_contract_record_and_no_candidate_scores():
    learner = Learner(load_candidates(["linear-regression"]))
    state = learner.new_state()
    step = learner.observe(state, "k", Observation(1, {"a": 1.0}, ts=0.0))
    assert set(orjson.loads(step.prediction.to_json())) == {
        "key", "id", "y_pred", "model", "n_learned", "ts"
    }  # fmt: skip
    learner.label(state, "k", Label(1, 2.0, ts=0.0))
    assert state.scores == [] and state.metric.get() == 2.0


def constant_rows(ys: list[float]) -> list[tuple[str, dict, float]]:
    return [("k", {"a": 1.0}, y) for y in ys]


@pytest.mark.parametrize(
    ("selection", "ys", "leaders"),
    [
        # Over all labels: `ten` (listed second) leads once its MAE is lower; a tie stays first.
        (Selection(0, 0), [0, 10, 10, 10], ["zero", "zero", "zero", "ten"]),
        # At least 3 labels since the last change (or the start) before any change.
        (Selection(0, 3), [10, 10, 10, 10, 0, 0], ["zero", "zero", "zero", "ten", "ten", "ten"]),
        # Over the last 2 labels the recent past decides: after 10, 0 the two tie (MAE 5), and
        # the first listed comes back.
        (Selection(2, 1), [10, 10, 0, 0, 0], ["zero", "ten", "ten", "zero", "zero"]),
    ],
)
def test_selection_rules_window_min_labels_and_ties(selection, ys, leaders):
    learner = Learner([Candidate("zero", zero), Candidate("ten", ten)], selection=selection)
    records = run(learner, constant_rows(ys))["k"]
    assert [r["model"] for r in records] == leaders
    assert all(r["candidates"] == {"zero": 0.0, "ten": 10.0} for r in records)


def test_names_are_unique_and_presets_mix_with_factories():
    candidates = load_candidates(
        ["linear-regression", "tests.creme_model:CremeStyleMean", "linear-regression"]
    )
    names = [c.name for c in candidates]
    assert names == ["linear-regression", "tests.creme_model:CremeStyleMean", "linear-regression#2"]


def test_a_mix_of_classifiers_and_regressors_is_refused():
    with pytest.raises(
        ModelError, match="all regressors, all classifiers, or one anomaly detector, not a mix"
    ):
        Learner(load_candidates(["linear-regression", "logistic-regression"]))


def test_a_candidate_that_raises_in_learn_misses_the_label_and_the_others_learn_it():
    learner = Learner([Candidate("fussy", Fussy), Candidate("zero", zero)])
    state = learner.new_state()
    step = learner.label(state, "k", Label(1, 3.0, ts=0.0, x={"boom": 1.0}))
    assert step.outcome == "joined" and step.learned == 1 and state.n_learned == 1
    assert "the model fussy raised in learn" in str(step.error)  # also dead-lettered


def test_a_state_pickled_before_candidates_loads_as_one_candidate():
    learner = Learner(load_candidates(["linear-regression"]))
    state = learner.new_state()
    learner.observe(state, "k", Observation(1, {"a": 1.0}, ts=0.0))
    learner.label(state, "k", Label(1, 2.0, ts=0.0))
    learner.observe(state, "k", Observation(2, {"a": 2.0}, ts=1.0))
    old_pending = {
        name: getattr(p, name) for p in state.pending.values() for name in
        ("x", "y_pred", "proba", "n_learned", "ts")
    }  # fmt: skip
    old = {name: getattr(state, name) for name in KeyState.__slots__}
    old["model"] = old.pop("models")[0]
    for name in ("scores", "leader", "switched_at"):
        del old[name]
    old["pending"] = {2: _OldPickle(type(next(iter(state.pending.values()))), old_pending)}
    raw = pickle.dumps(_OldPickle(KeyState, old))  # the bytes a worker before issue 14 wrote

    loaded = loads_state(raw)
    assert loaded.n_learned == 1 and loaded.scores == [] and loaded.leader == 0
    step = learner.label(loaded, "k", Label(2, 4.0, ts=1.0))
    assert step.outcome == "joined" and loaded.n_learned == 2
    again = learner.observe(loaded, "k", Observation(3, {"a": 1.0}, ts=2.0))
    fresh = learner.observe(state, "k", Observation(3, {"a": 1.0}, ts=2.0))
    assert again.prediction.y_pred != fresh.prediction.y_pred  # it learned label 2, `state` not
    assert loads_state(dumps_state(loaded)).models[0].predict_one({"a": 1.0}) == pytest.approx(
        again.prediction.y_pred
    )


class _OldPickle:
    """Pickles as an instance of `cls` with exactly the slot values `slots`."""

    def __init__(self, cls: type, slots: dict) -> None:
        self.cls, self.slots = cls, slots

    def __reduce__(self):  # as pickle reduces a slots object, but with other slots
        return object.__new__, (self.cls,), (None, self.slots)


def test_a_redelivered_observation_re_sends_the_same_record_with_candidates():
    learner = Learner([Candidate("zero", zero), Candidate("ten", ten)], selection=Selection(0, 0))
    processor = Processor(learner, Topics(), partitions=1, max_event_bytes=1024)
    store = PartitionStates(lambda key: None, size=10)
    value = orjson.dumps({"id": 1, "x": {"a": 1.0}})
    first = processor.process(Record("observations", 0, 3, 0.0, b"k", value), store)
    again = processor.process(Record("observations", 0, 3, 0.0, b"k", value), store)
    assert [o.value for o in again] == [o.value for o in first]
    assert orjson.loads(first[0].value)["candidates"] == {"zero": 0.0, "ten": 10.0}


def test_replay_reports_each_candidate_the_served_metric_and_the_latest_changes():
    events = []
    for i, (key, y) in enumerate([("a", 10), ("b", 0), ("a", 10), ("b", 0), ("a", 10)]):
        events.append(Event("observation", key, {"id": i, "x": {"v": 1.0}}))
        events.append(Event("label", key, {"id": i, "y": y}))
    learner = Learner([Candidate("zero", zero), Candidate("ten", ten)], selection=Selection(0, 1))
    result = replay_events(events, learner)
    assert result.names == ("zero", "ten")
    assert {name: m.get() for name, m in result.candidates.items()} == {"zero": 6.0, "ten": 4.0}
    # Key a is served by zero once (error 10), then by ten (no error); b by zero throughout.
    assert result.overall.get() == pytest.approx(10 / 5)
    assert {k: result.names[s.leader] for k, s in result.states.items()} == {
        "a": "ten",
        "b": "zero",
    }
    assert list(result.switches) == ["a"]
    switch = result.switches["a"]
    assert (switch.before, switch.after, switch.n_learned, switch.count) == ("zero", "ten", 1, 1)
