"""The soak's and the kill loop's checks find each kind of damage a crash could do."""

from __future__ import annotations

import copy

from streamlearn.learning.audit import audit
from streamlearn.learning.core import Learner
from streamlearn.learning.events import Label, Observation
from streamlearn.learning.models import load_candidates, load_factory

MODEL = "linear-regression"


def run() -> tuple[list, list]:
    """Three keys' events with labels a little late, a probe per key, and one process's answers."""
    events = []
    for i in range(30):
        key = f"k{i % 3}"
        events.append(("observation", key, {"id": i, "x": {"a": float(i % 4), "b": 1.0}}))
        if i >= 3:
            j = i - 3
            events.append(("label", f"k{j % 3}", {"id": j, "y": float(j % 5)}))
    events += [("label", f"k{j % 3}", {"id": j, "y": float(j % 5)}) for j in range(27, 30)]
    probe = {"id": "probe", "x": {"a": 2.0, "b": 1.0}}
    events += [("observation", f"k{k}", probe) for k in range(3)]
    learner = Learner(load_candidates([MODEL]))
    states: dict = {}
    answers = []
    for kind, key, value in events:
        state = states.setdefault(key, learner.new_state())
        if kind == "observation":
            step = learner.observe(state, key, Observation(value["id"], value["x"], 0.0))
            prediction = step.prediction
            answers.append({"key": key, "id": prediction.id, "y_pred": prediction.y_pred,
                            "n_learned": prediction.n_learned})  # fmt: skip
        else:
            learner.label(state, key, Label(value["id"], value["y"], 0.0))
    return events, answers


def test_one_uninterrupted_run_passes():
    events, answers = run()
    result = audit(events, answers + answers[:5], load_factory(MODEL))  # identical copies
    assert result.problems() == []
    assert (result.observations, result.copies) == (33, 38)


def test_each_kind_of_damage_is_found():
    events, answers = run()
    damaged = copy.deepcopy(answers)
    del damaged[4]  # never answered
    copy_of_7 = {**damaged[7], "n_learned": damaged[7]["n_learned"] + 1}  # a differing copy
    damaged[-1]["n_learned"] -= 1  # the last probe: a label lost
    damaged[-2]["n_learned"] += 1  # another probe: a label learned twice
    result = audit(events, [*damaged, copy_of_7], load_factory(MODEL))
    assert result.missing == [("k1", 4)]
    assert result.differing == [(damaged[7]["key"], damaged[7]["id"])]
    assert result.lost == {"k2": 1} and result.twice == {"k1": 1}
    assert ("k2", "probe") in result.wrong and ("k1", "probe") in result.wrong
    assert len(result.problems()) == 5
