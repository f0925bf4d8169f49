"""The learning core against River's own progressive validation, and its bookkeeping (no broker)."""

from __future__ import annotations

import pickle

import pytest

from streamlearn.core import Learner
from streamlearn.events import Label, Observation, Reason, Rejected
from streamlearn.models import load_factory
from tests.creme_model import CremeStyleMean, Fussy
from tests.oracle import chick_rows, per_key_predictions, phishing_rows


def _run_predict_then_learn(learner: Learner, rows) -> dict[str, list]:
    states: dict = {}
    out: dict[str, list] = {}
    for i, (key, x, y) in enumerate(rows):
        state = states.setdefault(key, learner.new_state())
        step = learner.observe(state, key, Observation(i, x, ts=float(i)))
        out.setdefault(key, []).append(step.prediction.y_pred)
        assert learner.label(state, key, Label(i, y, ts=float(i))).outcome == "joined"
    return out


@pytest.mark.parametrize(
    ("preset", "rows", "classifier"),
    [("linear-regression", chick_rows, False), ("logistic-regression", phishing_rows, True)],
)
def test_core_equals_river_progressive_validation_per_key(preset, rows, classifier):
    factory = load_factory(preset)
    data = rows()
    learner = Learner(factory, preset)
    assert learner.classifier is classifier
    ours = _run_predict_then_learn(learner, data)
    expected = per_key_predictions(data, factory, classifier)
    assert ours.keys() == expected.keys()
    for key in expected:
        if classifier:
            assert ours[key] == expected[key]
        else:
            assert ours[key] == pytest.approx(expected[key], abs=1e-9)


@pytest.fixture
def learner() -> Learner:
    return Learner(load_factory("linear-regression"), "linear-regression", horizon=100.0)


def test_label_before_observation_waits_then_learns_right_after_the_prediction(learner):
    state = learner.new_state()
    assert learner.label(state, "k", Label(1, 5.0, ts=0.0)).outcome == "waiting"
    assert state.n_learned == 0
    step = learner.observe(state, "k", Observation(1, {"a": 1.0}, ts=0.0))
    assert step.outcome == "predicted" and step.learned == 1
    assert step.prediction.n_learned == 0  # predicted with the model before the learn
    assert state.n_learned == 1 and not state.early and not state.pending


def test_duplicate_label_is_counted_not_learned(learner):
    state = learner.new_state()
    learner.observe(state, "k", Observation(1, {"a": 1.0}, ts=0.0))
    assert learner.label(state, "k", Label(1, 5.0, ts=1.0)).outcome == "joined"
    assert learner.label(state, "k", Label(1, 5.0, ts=2.0)).outcome == "duplicate"
    assert state.n_learned == 1
    assert learner.observe(state, "k", Observation(1, {"a": 1.0}, ts=3.0)).outcome == "duplicate"


def test_label_with_features_is_learned_without_an_observation(learner):
    state = learner.new_state()
    step = learner.label(state, "k", Label(9, 4.0, ts=0.0, x={"a": 2.0}))
    assert step.outcome == "joined" and state.n_learned == 1
    assert learner.observe(state, "k", Observation(10, {"a": 2.0}, 1.0)).prediction.y_pred != 0.0


def test_pending_entries_expire_on_event_time(learner):
    state = learner.new_state()
    learner.observe(state, "k", Observation(1, {"a": 1.0}, ts=0.0))
    learner.label(state, "k", Label(2, 1.0, ts=0.0))  # an early label that never meets its x
    assert learner.observe(state, "k", Observation(3, {"a": 1.0}, ts=50.0)).expired == 0
    step = learner.observe(state, "k", Observation(4, {"a": 1.0}, ts=100.5))
    assert step.expired == 2  # observation 1 and the early label for 2
    assert set(state.pending) == {3, 4} and not state.early
    assert learner.label(state, "k", Label(1, 1.0, ts=101.0)).outcome == "waiting"  # too late


def test_pending_entries_are_capped_per_key():
    learner = Learner(load_factory("linear-regression"), "lr", max_pending=3)
    state = learner.new_state()
    expired = sum(
        learner.observe(state, "k", Observation(i, {"a": 1.0}, ts=0.0)).expired for i in range(5)
    )
    assert expired == 2 and list(state.pending) == [2, 3, 4]


def test_a_model_that_raises_gives_an_error_and_the_key_goes_on():
    learner = Learner(Fussy, "fussy")
    state = learner.new_state()
    step = learner.observe(state, "k", Observation(0, {"boom": 1.0}, ts=0.0))
    assert step.outcome == "dead_lettered" and step.error.reason is Reason.MODEL_ERROR
    step = learner.label(state, "k", Label(1, 1.0, ts=0.0, x={"boom": 1.0}))
    assert step.outcome == "dead_lettered" and "learn" in str(step.error)
    learner.observe(state, "k", Observation(2, {"a": 1.0}, ts=1.0))
    assert learner.label(state, "k", Label(2, 1.0, ts=1.0)).outcome == "joined"


def test_a_target_of_the_wrong_kind_is_rejected_before_any_change(learner):
    state = learner.new_state()
    learner.observe(state, "k", Observation(1, {"a": 1.0}, ts=0.0))
    with pytest.raises(Rejected):
        learner.label(state, "k", Label(1, "ten", ts=0.0))
    assert 1 in state.pending and state.n_learned == 0


def test_state_survives_pickling_with_identical_predictions(learner):
    state = learner.new_state()
    for i in range(20):
        learner.observe(state, "k", Observation(i, {"a": float(i)}, ts=float(i)))
        learner.label(state, "k", Label(i, 2.0 * i, ts=float(i)))
    copy = pickle.loads(pickle.dumps(state))
    a = learner.observe(state, "k", Observation(99, {"a": 3.0}, ts=30.0)).prediction
    b = learner.observe(copy, "k", Observation(99, {"a": 3.0}, ts=30.0)).prediction
    assert a == b and a.n_learned == 20


def test_creme_style_fit_one_models_learn():
    learner = Learner(CremeStyleMean, "creme")
    state = learner.new_state()
    for i, y in enumerate([2.0, 4.0]):
        learner.observe(state, "k", Observation(i, {}, ts=0.0))
        learner.label(state, "k", Label(i, y, ts=0.0))
    assert learner.observe(state, "k", Observation(5, {}, 0.0)).prediction.y_pred == 3.0
