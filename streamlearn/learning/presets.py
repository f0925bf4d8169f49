"""Named River models for `--model NAME`: each factory returns a fresh, untrained pipeline.

Factories rather than instances, so every key gets its own model; no lambdas, so models pickle.

    >>> model = PRESETS["linear-regression"]()
    >>> model.learn_one({"x": 1.0}, 2.0)
    >>> model.predict_one({"x": 1.0})
    0.04
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from datetime import date, datetime

from river import (
    anomaly,
    compose,
    feature_extraction,
    linear_model,
    neighbors,
    optim,
    preprocessing,
    stats,
    utils,
)

__all__ = [
    "PRESETS",
    "bikes",
    "bikes_anomaly",
    "half_space_trees",
    "knn_regression",
    "linear_regression",
    "logistic_regression",
    "m5",
    "m5_knn",
    "rolling",
]

BIKES_WEATHER = ("clouds", "humidity", "pressure", "temperature", "wind")


def numeric_features() -> compose.SelectType:
    """Keeps the numeric features: `x` carries the key and maybe other text, which scaling
    cannot take. On numeric input it changes nothing, so the presets below predict exactly as
    River's bare `StandardScaler() | ...` pipelines."""
    return compose.SelectType(numbers.Number)


def linear_regression() -> compose.Pipeline:
    """Standardised linear regression (River defaults) on every numeric feature of `x`."""
    return numeric_features() | preprocessing.StandardScaler() | linear_model.LinearRegression()


def logistic_regression() -> compose.Pipeline:
    """Standardised binary logistic regression (River defaults) on every numeric feature of `x`."""
    return numeric_features() | preprocessing.StandardScaler() | linear_model.LogisticRegression()


def knn_regression() -> compose.Pipeline:
    """Standardised 5-nearest-neighbours regression over the last 500 events' numeric features."""
    return numeric_features() | preprocessing.StandardScaler() | _knn()


def _knn() -> neighbors.KNNRegressor:
    """5 nearest neighbours among the last 500 events."""
    # LazySearch (brute force over a window) rather than the default SWINN graph index: at a few
    # hundred to a few thousand events per model, SWINN was 6-12x slower to learn and predict.
    return neighbors.KNNRegressor(n_neighbors=5, engine=neighbors.LazySearch(window_size=500))


def half_space_trees() -> compose.Pipeline:
    """Anomaly scores from River's Half-Space Trees on every numeric feature of `x`, scaled to
    [0, 1] by a running min-max as the trees need; a 50-observation window (River's 250 would
    score nothing for a station's first ten days of hourly counts). The first window's scores
    are 0 while the trees take in mass; a fixed seed makes every key's trees alike."""
    return (
        numeric_features()
        | preprocessing.MinMaxScaler()
        | anomaly.HalfSpaceTrees(n_trees=10, height=8, window_size=50, seed=42)
    )


def _parse_moment(moment: str | datetime) -> datetime:
    """An ISO-8601 string (a trailing `Z` allowed, for Python 3.10) or a datetime, as a datetime."""
    if isinstance(moment, datetime):
        return moment
    text = str(moment)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def _bikes_add_hour(x: dict) -> dict:
    """`x` plus `hour` (0-23) parsed from `x["moment"]`; `station` passes through for grouping."""
    return {**x, "hour": _parse_moment(x["moment"]).hour}


def _bikes_weather(x: dict) -> dict:
    """The weather features of `x`, always in the order of `BIKES_WEATHER`.

    Not `compose.Select`: it keeps its keys in a set, whose order after unpickling may differ
    with the hash seed, so a model restored from the changelog summed its features in another
    order and predicted a different last bit than the live one."""
    return {name: x[name] for name in BIKES_WEATHER}


def bikes() -> compose.Pipeline:
    """Bikes at a station: `station`, ISO `moment`, clouds/humidity/pressure/temperature/wind."""
    model = compose.FuncTransformer(_bikes_weather)
    model += compose.FuncTransformer(_bikes_add_hour) | feature_extraction.TargetAgg(
        by=["station", "hour"], how=stats.Mean(), target_name="y_hourly"
    )
    model += feature_extraction.TargetAgg(
        by="station", how=stats.EWMean(0.5), target_name="y_recent"
    )
    model |= preprocessing.StandardScaler()
    model |= linear_model.LinearRegression(intercept_lr=0.1, optimizer=optim.SGD(0.01))
    return model


def _bikes_count_and_clock(x: dict) -> dict:
    """The station's count, and the hour as a point on a clock (so 23h is next to 0h)."""
    angle = 2 * math.pi * _parse_moment(x["moment"]).hour / 24
    return {"bikes": x["bikes"], "hour_cos": math.cos(angle), "hour_sin": math.sin(angle)}


def bikes_anomaly() -> compose.Pipeline:
    """Anomaly scores of a station's count of bikes at its hour of the day (`bikes`, `moment`;
    the weather, shared by every station, is left out: it made every station look odd at once).
    Half-Space Trees as in `half_space_trees`, 5 levels deep, which found the bundled stream's
    injected faults best of the depths tried (README, Anomalies and drift)."""
    return (
        compose.FuncTransformer(_bikes_count_and_clock)
        | preprocessing.MinMaxScaler()
        | anomaly.HalfSpaceTrees(n_trees=10, height=5, window_size=50, seed=42)
    )


def _split_m5_id(entity: str) -> tuple[str, str]:
    """`"HOBBIES_1_001_CA_1_validation"` -> `("HOBBIES_1_001", "CA_1")`."""
    text = str(entity)
    for suffix in ("_validation", "_evaluation"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    parts = text.split("_")
    if len(parts) < 3:
        return text, ""
    return "_".join(parts[:-2]), "_".join(parts[-2:])


def _parse_day(day: str | date) -> date:
    """An ISO date (or datetime) string, a date or a datetime, as a date."""
    if isinstance(day, datetime):
        return day.date()
    if isinstance(day, date):
        return day
    return _parse_moment(day).date()


def _m5_parse(x: dict) -> dict:
    """`item` and `store` from the M5 `id`, and `weekday` (0 = Monday) from the ISO `date`."""
    item, store = _split_m5_id(x["id"])
    return {"item": item, "store": store, "weekday": _parse_day(x["date"]).weekday()}


def rolling(cls: type, window_size: int) -> utils.Rolling:
    """`cls()` over the last `window_size` updates (a mean, a metric): River 0.26 takes the class
    (an instance is deprecated), older River an instance."""
    if "cls" in inspect.signature(utils.Rolling.__init__).parameters:
        return utils.Rolling(cls, window_size=window_size)
    return utils.Rolling(cls(), window_size=window_size)


def _m5_features() -> compose.Pipeline:
    """The second founding article's features: rolling means of the target per item (7 and 28
    days) and per weekday (4 weeks), from the M5 `id` (item_store) and an ISO `date`."""
    aggregates = (
        feature_extraction.TargetAgg(
            by="item", how=rolling(stats.Mean, 7), target_name="item_mean_7"
        )
        + feature_extraction.TargetAgg(
            by="item", how=rolling(stats.Mean, 28), target_name="item_mean_28"
        )
        + feature_extraction.TargetAgg(
            by="weekday", how=rolling(stats.Mean, 4), target_name="weekday_mean_4"
        )
    )
    return compose.FuncTransformer(_m5_parse) | aggregates | preprocessing.StandardScaler()


def m5() -> compose.Pipeline:
    """M5 daily sales per product and store: the article's features, linear regression."""
    return _m5_features() | linear_model.LinearRegression()


def m5_knn() -> compose.Pipeline:
    """The same features, 5-nearest-neighbours regression: the article's other candidate."""
    return _m5_features() | _knn()


PRESETS: dict[str, Callable[[], object]] = {
    "linear-regression": linear_regression,
    "logistic-regression": logistic_regression,
    "knn-regression": knn_regression,
    "bikes": bikes,
    "half-space-trees": half_space_trees,
    "bikes-anomaly": bikes_anomaly,
    "m5": m5,
    "m5-knn": m5_knn,
}
