"""Drift per key: a detector over each key's error stream, and what a drift does.

After each label joined with its prediction, the key's detector is updated with the error of
the prediction served: `|y - y_pred|` for regressors, 0 or 1 for classifiers. A drift is a
detection after which the error is higher than before (ADWIN's estimate rose; PageHinkley
watches increases only): a model whose error falls is learning, not drifting.

    >>> watch = DriftWatch("adwin")
    >>> detector = watch.new_detector()
    >>> [i for i in range(400) if watch.drifted(detector, 0.0 if i < 200 else 1.0)][:1]
    [223]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from river import drift

DETECTORS = ("none", "adwin", "page-hinkley")
REACTIONS = ("none", "reset")


@dataclass(frozen=True, slots=True)
class DriftWatch:
    """Which detector watches each key's error (`none`: no drift detection), and whether a
    drift resets the key's models (`on_drift="reset"`) or is only reported (`"none"`)."""

    detector: str = "none"
    on_drift: str = "none"

    @property
    def enabled(self) -> bool:
        return self.detector != "none"

    @property
    def resets(self) -> bool:
        return self.on_drift == "reset"

    def new_detector(self) -> Any:
        """A fresh detector for one key, or None when drift is not watched."""
        if self.detector == "adwin":
            return drift.ADWIN()
        if self.detector == "page-hinkley":
            return drift.PageHinkley(mode="up")
        return None

    def drifted(self, detector: Any, error: float) -> bool:
        """Update `detector` with one error; True when it detects that the error rose."""
        before = getattr(detector, "estimation", None)
        detector.update(error)
        if not detector.drift_detected:
            return False
        return before is None or detector.estimation > before
