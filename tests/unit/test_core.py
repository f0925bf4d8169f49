"""The learning core against River's own progressive validation, and its bookkeeping (no broker)."""

from __future__ import annotations

import pickle

import pytest

from streamlearn.learning.core import Learner
from streamlearn.learning.events import Label, Observation, Reason, Rejected
from streamlearn.learning.models import Candidate, load_candidates, load_factory
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
    learner = Learner([Candidate(preset, factory)])
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
    return Learner(load_candidates(["linear-regression"]), horizon=100.0)


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
    # The clock moves to what two observations in a row agree on: 50 here, then 100.5.
    assert learner.observe(state, "k", Observation(4, {"a": 1.0}, ts=100.5)).expired == 0
    step = learner.observe(state, "k", Observation(5, {"a": 1.0}, ts=101.0))
    assert step.expired == 2  # observation 1 and the early label for 2
    assert set(state.pending) == {3, 4, 5} and not state.early
    assert learner.label(state, "k", Label(1, 1.0, ts=101.0)).outcome == "waiting"  # too late


def _daily(learner, state, days, typo_day=None, key="k"):
    """Observe day 0..days-1 and label each the next day; `typo_day` says it is year 2061."""
    learned = []
    for day in days:
        ts = 4e9 if day == typo_day else day * 86400.0
        learner.observe(state, key, Observation(day, {"a": float(day)}, ts=ts))
        if day - 1 in state.pending:
            step = learner.label(state, key, Label(day - 1, 1.0, ts=day * 86400.0))
            learned.append(step.outcome)
    return learned


def test_one_far_future_time_expires_nothing_and_shields_nothing(learner):
    horizon_days = Learner(load_candidates(["linear-regression"]), horizon=7 * 86400.0)
    state = horizon_days.new_state()
    outcomes = _daily(horizon_days, state, range(60), typo_day=30)
    assert outcomes == ["joined"] * 59  # before the fix: the typo expired every later entry
    assert state.clock == 58 * 86400.0  # the typo never became the key's time
    assert set(state.pending) == {59}


def test_a_far_future_entry_at_the_front_does_not_shield_expired_ones():
    learner = Learner(load_candidates(["linear-regression"]), horizon=10.0)
    state = learner.new_state()
    learner.observe(state, "k", Observation("future", {"a": 1.0}, ts=1e12))  # first, alone
    for i in range(30):
        learner.observe(state, "k", Observation(i, {"a": 1.0}, ts=float(i)))
    # entries 0..17 are more than 10 s behind the clock (28): gone, the future one kept
    assert list(state.pending) == ["future", *range(18, 30)]


def test_a_rejected_observation_does_not_move_the_clock():
    learner = Learner([Candidate("fussy", Fussy)], horizon=10.0)
    state = learner.new_state()
    for i in range(3):
        learner.observe(state, "k", Observation(i, {"a": 1.0}, ts=float(i)))
    for i in (90, 91):  # two in a row that would move the clock: both raise in the model
        step = learner.observe(state, "k", Observation(i, {"boom": 1.0}, ts=1e9 + i))
        assert step.outcome == "dead_lettered"
    assert state.clock == 1.0 and set(state.pending) == {0, 1, 2}


def test_an_event_without_ts_on_a_timed_key_takes_the_key_time(learner):
    state = learner.new_state()
    today = 1.8e9
    for i in range(3):
        learner.observe(state, "k", Observation(i, {"a": 1.0}, ts=float(i)))
    for i in (3, 4):  # two events stamped with the record time: a forgotten "ts"
        step = learner.observe(state, "k", Observation(i, {"a": 1.0}, ts=today, timed=False))
        assert step.warnings == ("mixed_time",) and step.expired == 0
        assert state.pending[i].ts == 2.0  # the key's latest observation time, not today
    assert state.clock == 1.0
    step = learner.label(state, "k", Label(0, 1.0, ts=today, timed=False))
    assert step.outcome == "joined" and step.warnings == ("mixed_time",)
    assert learner.observe(state, "k", Observation(5, {"a": 1.0}, ts=3.0)).warnings == ()


def test_a_key_on_record_time_keeps_it(learner):
    state = learner.new_state()
    learner.observe(state, "k", Observation(0, {"a": 1.0}, ts=1000.0, timed=False))
    step = learner.observe(state, "k", Observation(1, {"a": 1.0}, ts=5.0))  # a stray "ts"
    assert step.warnings == ("mixed_time",) and state.pending[1].ts == 1000.0


def test_an_observation_without_a_usable_feature_is_flagged(learner):
    state = learner.new_state()
    step = learner.observe(state, "k", Observation(0, {"id": "A_1", "date": "2016-01-01"}, 0.0))
    assert step.outcome == "predicted" and step.warnings == ("no_features",)
    assert learner.observe(state, "k", Observation(1, {"a": 1.0}, 1.0)).warnings == ()
    m5 = Learner(load_candidates(["m5"]))  # a pipeline whose needs are not known: no check
    x = {"id": "A_1_001_CA_1", "date": "2016-01-01"}
    assert m5.observe(m5.new_state(), "k", Observation(0, x, 0.0)).warnings == ()


def test_pending_entries_are_capped_per_key():
    learner = Learner(load_candidates(["linear-regression"]), max_pending=3)
    state = learner.new_state()
    expired = sum(
        learner.observe(state, "k", Observation(i, {"a": 1.0}, ts=0.0)).expired for i in range(5)
    )
    assert expired == 2 and list(state.pending) == [2, 3, 4]


def test_a_model_that_raises_gives_an_error_and_the_key_goes_on():
    learner = Learner([Candidate("fussy", Fussy)])
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
    learner = Learner([Candidate("creme", CremeStyleMean)])
    state = learner.new_state()
    for i, y in enumerate([2.0, 4.0]):
        learner.observe(state, "k", Observation(i, {}, ts=0.0))
        learner.label(state, "k", Label(i, y, ts=0.0))
    assert learner.observe(state, "k", Observation(5, {}, 0.0)).prediction.y_pred == 3.0
