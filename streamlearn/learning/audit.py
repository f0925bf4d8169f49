"""Checks a run's predictions against River's oracle, per key: what a kill loop must leave intact.

Given the events sent (`(kind, key, value)`, as `streamlearn.source.Event` has them) and every
prediction record read back, copies included, it counts what an operator's soak counts:
observations never answered, observations answered twice with different copies, predictions that
differ from the key's model after `n_learned` labels (one uninterrupted run: each key learns its
labels in id order, whoever processes them), and labels lost or learned twice, read off the
answers to probe observations sent once everything was processed. Used by the kill loop test
(tests/integration/test_kill_loop.py) and the soak (`python -m bench.soak`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from streamlearn.learning.models import learn, predict

TOLERANCE = 1e-9


@dataclass
class Audit:
    """What the checks found; `problems()` is empty when the run lost and repeated nothing."""

    observations: int = 0
    copies: int = 0  # prediction records read, duplicates included
    missing: list[tuple[str, Any]] = field(default_factory=list)
    differing: list[tuple[str, Any]] = field(default_factory=list)
    wrong: list[tuple[str, Any]] = field(default_factory=list)  # not the oracle's prediction
    lost: dict[str, int] = field(default_factory=dict)  # key -> labels never learned
    twice: dict[str, int] = field(default_factory=dict)  # key -> labels learned once too often

    def problems(self) -> list[str]:
        """One line per kind of problem found, with a few examples."""
        found = {
            "predictions missing": self.missing,
            "observations with differing copies": self.differing,
            "predictions unlike the oracle's": self.wrong,
            "keys with labels lost": sorted(self.lost.items()),
            "keys with labels learned twice": sorted(self.twice.items()),
        }
        return [f"{len(v)} {name}, e.g. {v[:3]}" for name, v in found.items() if v]

    def summary(self) -> str:
        return (
            f"{self.observations:,} observations, {self.copies:,} prediction records:"
            f" {len(self.missing)} missing, {len(self.differing)} with differing copies,"
            f" {len(self.wrong)} unlike the oracle, {sum(self.lost.values())} labels lost,"
            f" {sum(self.twice.values())} learned twice"
        )


def audit(
    events: Iterable[tuple[str, str, dict]],
    predictions: Iterable[dict],
    factory: Callable[[], Any],
    probe_id: Any = "probe",
) -> Audit:
    """Check `predictions` against the oracle over `events` (see above).

    Observations with id `probe_id` are the probes: sent after every other event was processed,
    each must be answered with `n_learned` equal to all of its key's labels.
    """
    result = Audit()
    observed: dict[str, dict[Any, dict]] = defaultdict(dict)  # key -> id -> x
    labels: dict[str, list[tuple[Any, Any]]] = defaultdict(list)  # key -> [(id, y)] in order
    for kind, key, value in events:
        if kind == "observation":
            observed[key][value["id"]] = value["x"]
        else:
            labels[key].append((value["id"], value["y"]))
    answers: dict[tuple[str, Any], dict] = {}
    for prediction in predictions:
        result.copies += 1
        first = answers.setdefault((prediction["key"], prediction["id"]), prediction)
        if first != prediction and (prediction["key"], prediction["id"]) not in result.differing:
            result.differing.append((prediction["key"], prediction["id"]))
    for key, xs in observed.items():
        result.observations += len(xs)
        result.missing.extend((key, i) for i in xs if (key, i) not in answers)
        answered = [(answers[key, i], xs[i]) for i in xs if (key, i) in answers]
        _check_key(result, key, answered, xs, labels[key], factory)
        probe = answers.get((key, probe_id))
        if probe is not None and probe["n_learned"] != len(labels[key]):
            gap = len(labels[key]) - probe["n_learned"]
            (result.lost if gap > 0 else result.twice)[key] = abs(gap)
    return result


def _check_key(
    result: Audit,
    key: str,
    answered: list[tuple[dict, dict]],
    xs: dict[Any, dict],
    labels: list[tuple[Any, Any]],
    factory: Callable[[], Any],
) -> None:
    """Replay the key's labels in order, each learned with its observation's `xs`; every
    answer must match the model after its `n_learned` of them."""
    by_learned: dict[int, list[tuple[dict, dict]]] = defaultdict(list)
    for prediction, x in answered:
        by_learned[prediction["n_learned"]].append((prediction, x))
    model, learned = factory(), 0
    classifier = "proba" in answered[0][0] if answered else False
    for n in sorted(by_learned):
        while learned < n and learned < len(labels):
            event_id, y = labels[learned]
            model = learn(model, xs[event_id], y)
            learned += 1
        for prediction, x in by_learned[n]:
            expected, _ = predict(model, x, classifier)
            if learned != n or not _same(prediction["y_pred"], expected):
                result.wrong.append((key, prediction["id"]))


def _same(got: Any, expected: Any) -> bool:
    if isinstance(expected, float) and isinstance(got, int | float):
        return math.isclose(got, expected, rel_tol=0.0, abs_tol=TOLERANCE)
    return got == expected
