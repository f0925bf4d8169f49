"""Models for tests: a creme-style one (`fit_one` returns the model, no `learn_one`), one
that raises on a feature, constants and a second classifier. Workers load them with
`--model tests.creme_model:NAME`.
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


class Fussy:
    """A River-style regressor that raises on a feature named `boom` (for model-error tests)."""

    def __init__(self) -> None:
        from streamlearn.learning.presets import linear_regression

        self.model = linear_regression()

    def learn_one(self, x: dict, y: float) -> None:
        if "boom" in x:
            raise ValueError("cannot learn from 'boom'")
        self.model.learn_one(x, y)

    def predict_one(self, x: dict) -> float:
        if "boom" in x:
            raise ValueError("cannot predict with 'boom'")
        return self.model.predict_one(x)


class Constant:
    """Always predicts the same value and learns nothing: selection tests know every error."""

    def __init__(self, value: float) -> None:
        self.value = value

    def learn_one(self, x: dict, y: float) -> None:
        pass

    def predict_one(self, x: dict) -> float:
        return self.value


def zero() -> Constant:
    return Constant(0.0)


def ten() -> Constant:
    return Constant(10.0)


def naive_bayes():
    """A second classifier beside the `logistic-regression` preset."""
    from river import naive_bayes, preprocessing

    return preprocessing.StandardScaler() | naive_bayes.GaussianNB()


class Hoarder:
    """A regressor whose state grows by 256 KB a label: a model too big for one Kafka record."""

    def __init__(self) -> None:
        self.kept: list[bytes] = []

    def learn_one(self, x: dict, y: float) -> None:
        self.kept.append(bytes(256_000))

    def predict_one(self, x: dict) -> float:
        return float(len(self.kept))
