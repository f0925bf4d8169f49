"""A creme-style model for tests: `fit_one` returns the model and there is no `learn_one`.

Workers load it with `--model tests.creme_model:CremeStyleMean`.
"""

from __future__ import annotations


class CremeStyleMean:
    """Predicts the running mean of the targets it was fitted on."""

    def __init__(self) -> None:
        self.n, self.total = 0, 0.0

    def fit_one(self, x: dict, y: float) -> CremeStyleMean:
        self.n, self.total = self.n + 1, self.total + y
        return self

    def predict_one(self, x: dict) -> float:
        return self.total / self.n if self.n else 0.0
