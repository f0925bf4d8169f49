"""A key's state as JSON for people: its metrics, candidates, joins in flight and models.

Pure functions of a `KeyState`, no I/O, so the web routes and the tests share them.

    >>> from streamlearn.learning.core import Learner, Observation, Label
    >>> from streamlearn.learning.models import load_candidates
    >>> learner = Learner(load_candidates(["linear-regression"]))
    >>> state = learner.new_state()
    >>> _ = learner.observe(state, "k", Observation(1, {"t": 1.0}, ts=0.0))
    >>> _ = learner.label(state, "k", Label(1, 2.0, ts=1.0))
    >>> summary = describe_key(state, learner.names)
    >>> summary["n_learned"], summary["serving"], summary["metric"]
    (1, 'linear-regression', {'name': 'MAE', 'value': 2.0})
    >>> metric_value(learner.new_metric()) is None  # nothing scored yet: no value, not 0
    True
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from streamlearn.learning.core import KeyState
from streamlearn.learning.models import predict


def describe_key(state: KeyState, names: Sequence[str]) -> dict[str, Any]:
    """What `GET /keys/<key>` answers: everything in the state but the pending features."""
    several = len(state.scores) == len(state.models) > 1
    candidates = [
        {
            "name": name,
            "serving": index == state.leader,
            "metric": metric_value(state.scores[index] if several else state.metric),
            "model": describe_model(model),
        }
        for index, (name, model) in enumerate(zip(names, state.models, strict=True))
    ]
    return {
        "n_learned": state.n_learned,
        "metric": None  # an anomaly detector's key: nothing to score against
        if state.metric is None
        else {"name": type(state.metric).__name__, "value": metric_value(state.metric)},
        "serving": names[state.leader],
        "candidates": candidates,
        "pending": len(state.pending),
        "early": len(state.early),
        "clock": state.clock if math.isfinite(state.clock) else None,
        "last_ts": state.last_ts,
        "drift": state.drift,  # {"count", "ts", "n_learned"} of its last drift, or None
    }


def metric_value(metric: Any) -> float | None:
    """A metric's value, None before it has scored anything (River answers 0 then) and for
    an anomaly detector's key, which has no metric."""
    if metric is None or scored(metric) == 0:
        return None
    value = metric.get()
    return value if isinstance(value, int | float) and math.isfinite(value) else None


def scored(metric: Any) -> float:
    """How many predictions `metric` has scored: River's MAE, Accuracy, or a rolling one."""
    if hasattr(metric, "window"):  # utils.Rolling
        return len(metric.window)
    if hasattr(metric, "cm"):  # Accuracy and the other confusion-matrix metrics
        return metric.cm.total_weight
    return metric._mean.n  # MAE and the other mean-based regression metrics


def describe_model(model: Any) -> dict[str, Any]:
    """River's parameters of `model` and, for linear models (alone or last in a pipeline),
    their weights and intercept."""
    description: dict[str, Any] = {"repr": str(model)}
    get_params = getattr(model, "_get_params", None)
    if get_params is not None:
        description["params"] = _jsonable(get_params())
    linear = _last_step(model)
    weights = getattr(linear, "weights", None)
    if weights is not None and hasattr(weights, "items"):
        description["weights"] = {str(k): float(v) for k, v in weights.items()}
        intercept = getattr(linear, "intercept", None)
        if isinstance(intercept, int | float):
            description["intercept"] = float(intercept)
    return description


def predict_without_learning(state: KeyState, x: dict, classifier: bool) -> dict[str, Any]:
    """The serving model's answer to `x`, from a copy: a pipeline may learn while it predicts
    (River's `learn_during_predict`, creme's unsupervised steps), and the key's model must not."""
    model = copy.deepcopy(state.models[state.leader])
    y_pred, proba = predict(model, x, classifier)
    answer: dict[str, Any] = {"y_pred": y_pred, "n_learned": state.n_learned}
    if proba is not None:
        answer["proba"] = proba
    return answer


def _last_step(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    if isinstance(steps, dict) and steps:
        return list(steps.values())[-1]
    return model


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if len(value) == 2 and isinstance(value[0], type):  # River's (class, params) pairs
            return {"class": value[0].__name__, "params": _jsonable(value[1])}
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)
