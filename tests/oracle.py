"""The correctness oracle: River's own progressive validation, run per key."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from river import evaluate, metrics


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
