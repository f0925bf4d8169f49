"""Drift per key, without a broker: the key's detector sees exactly the served predictions'
errors, the record tells the last drift, a reset starts fresh models that learn the label that
showed it, and all of it survives a pickled state."""

from __future__ import annotations

import random

import orjson
import pytest
from river import drift

from streamlearn.learning.core import Learner
from streamlearn.learning.drift import DriftWatch
from streamlearn.learning.events import Label, Observation
from streamlearn.learning.models import load_candidates, load_factory
from streamlearn.learning.state import dumps_state, loads_state


def shifting_rows(n: int = 600, at: int = 300, seed: int = 5) -> list[tuple[str, dict, float]]:
    """One key, y = 2a + noise, then y = -2a + 10 from row `at` on: the model's error jumps."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a = rng.uniform(0, 1)
        y = (2 * a if i < at else 10 - 2 * a) + rng.gauss(0, 0.1)
        rows.append(("k", {"a": a}, y))
    return rows


def run(learner: Learner, rows, pickle_every: int = 0) -> list[dict]:
    state, out = learner.new_state(), []
    for i, (key, x, y) in enumerate(rows):
        step = learner.observe(state, key, Observation(i, x, ts=float(i)))
        out.append(orjson.loads(step.prediction.to_json()))
        assert learner.label(state, key, Label(i, y, ts=float(i))).outcome == "joined"
        if pickle_every and i % pickle_every == 0:
            state = loads_state(dumps_state(state))
    return out


@pytest.mark.parametrize("detector", ["adwin", "page-hinkley"])
def test_the_key_detector_sees_the_served_errors_and_the_record_tells_the_last_drift(detector):
    rows = shifting_rows()
    records = run(Learner(load_candidates(["linear-regression"]), drift=DriftWatch(detector)), rows)
    # Oracle: River's detector run by hand over |y - y_pred| of the served predictions.
    river = drift.ADWIN() if detector == "adwin" else drift.PageHinkley(mode="up")
    drifts = []
    for i, (record, (_, _, y)) in enumerate(zip(records, rows, strict=True)):
        before = getattr(river, "estimation", None)
        river.update(abs(y - record["y_pred"]))
        if river.drift_detected and (before is None or river.estimation > before):
            drifts.append(i)
    assert drifts and drifts[0] >= 300, drifts  # the jump, not before it
    expected, count = [], 0
    for i in range(len(rows)):
        expected.append(
            {"count": count, "ts": float(drifts[count - 1]), "n_learned": drifts[count - 1] + 1}
            if count
            else None
        )
        if i in drifts:
            count += 1
    assert [r.get("drift") for r in records] == expected


def test_an_error_that_falls_is_no_drift():
    rows = shifting_rows(at=10**9)  # no shift: the error falls as the model learns
    records = run(Learner(load_candidates(["linear-regression"]), drift=DriftWatch("adwin")), rows)
    assert all("drift" not in r for r in records)


def test_a_classifier_watches_its_zero_one_error():
    rng = random.Random(3)
    rows = []
    for i in range(800):
        a = rng.uniform(-1, 1)
        rows.append(("k", {"a": a}, (a > 0) if i < 400 else (a < 0)))
    records = run(
        Learner(load_candidates(["logistic-regression"]), drift=DriftWatch("adwin")), rows
    )
    first = next(i for i, r in enumerate(records) if "drift" in r)
    assert 400 < first < 500, first


def test_reset_on_drift_serves_fresh_models_that_learned_the_label_that_showed_it():
    rows = shifting_rows()
    learner = Learner(
        load_candidates(["linear-regression"]), drift=DriftWatch("adwin", on_drift="reset")
    )
    records = run(learner, rows, pickle_every=13)
    first = next(i for i, r in enumerate(records) if "drift" in r) - 1  # the label that showed it
    fresh = load_factory("linear-regression")()
    for i in range(first, len(rows)):
        if i > first and records[i].get("drift", {}).get("count", 1) > 1:
            break  # a second drift would reset again
        _, x, y = rows[i]
        if i > first:
            assert records[i]["y_pred"] == pytest.approx(fresh.predict_one(x), abs=1e-12)
        fresh.learn_one(x, y)
    watched = run(Learner(load_candidates(["linear-regression"]), drift=DriftWatch("adwin")), rows)
    assert records[: first + 1] == watched[: first + 1]  # the same until the reset


def test_drift_records_survive_a_pickled_state_identically():
    rows = shifting_rows()
    learner = Learner(
        load_candidates(["linear-regression"]), drift=DriftWatch("page-hinkley", "reset")
    )
    assert run(learner, rows, pickle_every=7) == run(learner, rows)
