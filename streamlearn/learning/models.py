"""Models: presets by name, any `module:factory`, and one adapter for River and creme styles.

A model is any object with `predict_one` and either `learn_one` (River) or `fit_one` (creme,
which may return the model), or an anomaly detector with `score_one` and `learn_one`
(learning/anomaly.py). streamlearn never needs more than the functions here.

    >>> factory = load_factory("linear-regression")
    >>> model = factory()
    >>> model = learn(model, {"x": 1.0}, 2.0)
    >>> isinstance(predict(model, {"x": 1.0}, classifier=False)[0], float)
    True
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from river import base, compose

from streamlearn.errors import ModelError
from streamlearn.learning.presets import PRESETS

Factory = Callable[[], Any]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One of a key's models: the name its predictions carry, and the factory of fresh ones."""

    name: str
    factory: Factory


def split_specs(values: Iterable[str]) -> tuple[str, ...]:
    """Model specs from `--model` values, each of which may list several, comma- or
    space-separated (as `STREAMLEARN_MODEL` does); neither occurs in a preset or module path.

        >>> split_specs(["knn-regression,linear-regression", "mymodels:sales"])
        ('knn-regression', 'linear-regression', 'mymodels:sales')
    """
    return tuple(spec for value in values for spec in re.split(r"[,\s]+", value) if spec)


def load_candidates(specs: Iterable[str]) -> list[Candidate]:
    """A checked `Candidate` per spec, in order, named by the spec itself; a spec given twice
    gets `#2`, `#3`, ... so that every name in a prediction's `candidates` is unique.

        >>> [c.name for c in load_candidates(["linear-regression", "knn-regression",
        ...                                   "linear-regression"])]
        ['linear-regression', 'knn-regression', 'linear-regression#2']
    """
    candidates: list[Candidate] = []
    seen: dict[str, int] = {}
    for spec in specs:
        seen[spec] = seen.get(spec, 0) + 1
        name = spec if seen[spec] == 1 else f"{spec}#{seen[spec]}"
        candidates.append(Candidate(name, load_factory(spec)))
    if not candidates:
        raise ModelError("--model: no model given")
    return candidates


def load_factory(spec: str) -> Factory:
    """A preset name, or `package.module:factory` naming a zero-argument callable; the model it
    makes is checked once here, so every command rejects a bad `--model` the same way."""
    factory = _resolve(spec)
    try:
        model = factory()
    except Exception as error:  # a user's factory: any failure is theirs to fix, in one line
        raise ModelError(f"--model {spec}: calling the factory raised {error!r:.200}") from None
    check_model(model, spec)
    return factory


def _resolve(spec: str) -> Factory:
    if spec in PRESETS:
        return PRESETS[spec]
    if ":" not in spec:
        names = ", ".join(sorted(PRESETS))
        raise ModelError(
            f"unknown model {spec!r}: use a preset ({names}) or package.module:factory"
        )
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ModelError(f"cannot import {module_name!r} for --model {spec}: {error}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelError(f"{module_name!r} has no callable {attr!r} (--model {spec})")
    return factory


def check_model(model: Any, spec: str) -> None:
    """Raise `ModelError` unless `model` can predict (or score) and learn one event at a time."""
    answers = hasattr(model, "predict_one") or hasattr(model, "score_one")
    if not answers or not (hasattr(model, "learn_one") or hasattr(model, "fit_one")):
        raise ModelError(
            f"--model {spec} gave a {type(model).__name__}, which lacks predict_one and"
            " learn_one (River) or fit_one (creme), or score_one and learn_one (an anomaly"
            " detector)"
        )


def is_classifier(model: Any) -> bool:
    """River classifiers and pipelines ending in one; creme-style objects by `predict_proba_one`."""
    if isinstance(model, base.Estimator):
        return isinstance(model, base.Classifier)  # a Pipeline answers for its last step
    return hasattr(model, "predict_proba_one")


def feature_check(model: Any) -> Callable[[dict], bool] | None:
    """For a River pipeline that starts by keeping features of some types (the numeric presets),
    a test that `x` has one it keeps; None for any other model, whose needs are not known.

        >>> usable = feature_check(load_factory("linear-regression")())
        >>> usable({"id": "A_1", "date": "2016-01-02"}), usable({"id": "A_1", "price": 2.5})
        (False, True)
    """
    if isinstance(model, compose.Pipeline):
        first = next(iter(model.steps.values()))
        if isinstance(first, compose.SelectType):
            types = first.types
            return lambda x: any(isinstance(value, types) for value in x.values())
    return None


def predict(model: Any, x: dict, classifier: bool) -> tuple[Any, dict | None]:
    """`(y_pred, proba)`: `proba` is `{class: p}` for classifiers, None for the rest."""
    y_pred = model.predict_one(x)
    proba = model.predict_proba_one(x) if classifier else None
    return y_pred, proba


def learn(model: Any, x: dict, y: Any) -> Any:
    """Learn one example and return the model (creme's `fit_one` may return a new one)."""
    learn_one = getattr(model, "learn_one", None)
    if learn_one is not None:
        learn_one(x, y)
        return model
    returned = model.fit_one(x, y)
    return returned if returned is not None and hasattr(returned, "predict_one") else model
