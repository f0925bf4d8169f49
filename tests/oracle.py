"""The correctness oracle: River's own progressive validation, run per key."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from river import evaluate, metrics, utils


def per_key_predictions(
    rows: Iterable[tuple[str, dict, Any]], factory: Callable[[], Any], classifier: bool = False
) -> dict[str, list]:
    """`{key: [y_pred, ...]}` from River's progressive validation on each key's sub-stream."""
    streams: dict[str, list] = defaultdict(list)
    for key, x, y in rows:
        streams[key].append((x, y))
    metric = metrics.Accuracy if classifier else metrics.MAE
    return {
        key: [
            step["Prediction"]
            for step in evaluate.iter_progressive_val_score(
                stream, factory(), metric(), step=1, yield_predictions=True
            )
        ]
        for key, stream in streams.items()
    }


def served_by_rule(
    rows: Iterable[tuple[str, dict, Any]],
    candidates: dict[str, dict[str, list]],
    window: int,
    min_labels: int,
    classifier: bool = False,
) -> dict[str, list[tuple[str, Any]]]:
    """`{key: [(serving name, y_pred), ...]}` by the stated rule, from each candidate's
    progressive-validation predictions (`per_key_predictions`): after each label, once the key
    has learned `min_labels` labels since its leader last changed, the candidate with the best
    metric (over all labels, or the last `window`) leads; ties go to the first listed."""
    ys: dict[str, list] = defaultdict(list)
    for key, _, y in rows:
        ys[key].append(y)
    metric = metrics.Accuracy if classifier else metrics.MAE
    names = list(candidates)
    served = {}
    for key, truth in ys.items():
        scores = [utils.Rolling(metric, window_size=window) if window else metric() for _ in names]
        leader, switched_at, out = 0, 0, []
        for t, y in enumerate(truth):
            out.append((names[leader], candidates[names[leader]][key][t]))
            for score, name in zip(scores, names, strict=True):
                if candidates[name][key][t] is not None:
                    score.update(y, candidates[name][key][t])
            if t + 1 - switched_at >= min_labels:
                values = [score.get() for score in scores]
                best = values.index(max(values) if classifier else min(values))
                if best != leader:
                    leader, switched_at = best, t + 1
        served[key] = out
    return served


def chick_rows() -> list[tuple[str, dict, float]]:
    """River's bundled ChickWeights as `(key, x, y)`, keyed by chick (the key stays a feature)."""
    from river import datasets

    return [(str(x["chick"]), dict(x), float(y)) for x, y in datasets.ChickWeights()]


def phishing_rows(n: int = 300, keys: int = 15) -> list[tuple[str, dict, bool]]:
    """The first `n` rows of River's bundled Phishing data set, spread over `keys` keys."""
    from river import datasets

    rows = []
    for i, (x, y) in enumerate(datasets.Phishing()):
        if i == n:
            break
        rows.append((f"site-{i % keys}", dict(x), bool(y)))
    return rows


def per_key_scores(rows: Iterable[tuple[str, dict]], factory: Callable[[], Any]) -> dict[str, list]:
    """`{key: [score, ...]}` from River's own detector over each key's observations in order:
    `score_one(x)`, then `learn_one(x)`, as River's anomaly examples run it."""
    detectors: dict[str, Any] = {}
    scores: dict[str, list] = defaultdict(list)
    for key, x in rows:
        detector = detectors.setdefault(key, factory())
        scores[key].append(detector.score_one(x))
        detector.learn_one(x)
    return dict(scores)


def station_rows(keys: int = 4, n: int = 200, seed: int = 7) -> list[tuple[str, dict]]:
    """`(key, x)` observations of `keys` sensors: a daily-like cycle plus noise, the key as a
    text feature, and one stretch per key stuck at zero (a broken sensor)."""
    import math
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        for k in range(keys):
            broken = 120 + 10 * k <= i < 130 + 10 * k
            level = 0.0 if broken else 10 + 5 * math.sin(i / 4 + k) + rng.gauss(0, 0.5)
            rows.append((f"sensor-{k}", {"sensor": f"sensor-{k}", "level": level, "i": i % 24}))
    return rows
