"""Learning without labels: anomaly detectors, one per key, and the per-key threshold.

An anomaly detector (River's `AnomalyDetector` protocol) answers each observation with
`score_one(x)`, then learns it with `learn_one(x)`: no label is needed. The score is the
detector's own, so per key the scores equal River's detector run over that key's observations.

With a `Threshold`, each score is also flagged: above a fixed value (River's `ThresholdFilter`)
or at or above the running `q`-quantile of the key's earlier scores (River's `QuantileFilter`).
The detector learns every observation, flagged or not (`protect_anomaly_detector=False`): a
key whose normal changes for good stops being flagged, and the scores stay River's.

A key's first `grace` scores are not flagged, nor counted in its quantile: a detector's first
scores say little (Half-Space Trees answer 0 until their first window is full), and a quantile
of those zeros flagged every score that came next.

    >>> threshold = Threshold(quantile=0.5)
    >>> seen = threshold.new_quantile()
    >>> [threshold.flag(score, seen) for score in (0.2, 0.1, 0.3, 0.25)]
    [False, False, True, True]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from river import base, stats


def is_detector(model: Any) -> bool:
    """River anomaly detectors and pipelines ending in one; other objects by `score_one` and
    `learn_one` without `predict_one`."""
    if isinstance(model, base.Estimator):
        return isinstance(model, base.AnomalyDetector)  # a Pipeline answers for its last step
    return hasattr(model, "score_one") and not hasattr(model, "predict_one")


@dataclass(frozen=True, slots=True)
class Threshold:
    """When a score is an anomaly: at or above `value`, or at or above the `quantile` of the
    key's earlier scores; neither set, scores are not flagged."""

    quantile: float | None = None
    value: float | None = None
    grace: int = 0

    @property
    def flags(self) -> bool:
        return self.quantile is not None or self.value is not None

    def new_quantile(self) -> stats.Quantile | None:
        """The running quantile a key keeps of its scores, when flagging by quantile."""
        return stats.Quantile(self.quantile) if self.quantile is not None else None

    def flag(self, score: float, seen: stats.Quantile | None, scored: int = 0) -> bool | None:
        """Whether `score` is an anomaly (None without a threshold), then count it in `seen`;
        `scored` is how many scores the key had before this one.

        As River's filters classify: `score >= threshold`; a key's first score, with no
        quantile yet, is not an anomaly."""
        if not self.flags:
            return None
        if scored < self.grace:
            return False
        if seen is None:
            return None if self.value is None else score >= self.value
        flagged = score >= (seen.get() or math.inf)
        seen.update(score)
        return flagged
