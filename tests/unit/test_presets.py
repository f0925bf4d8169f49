"""The model presets: fresh, independent, picklable, and able to learn their kind of stream."""

from __future__ import annotations

import datetime as dt
import math
import os
import pickle
import random
import subprocess
import sys

import pytest
from river import anomaly, base, dummy, evaluate, linear_model, metrics, preprocessing, stats

from streamlearn.learning.presets import BIKES_WEATHER, PRESETS
from tests.oracle import chick_rows, phishing_rows

Stream = list[tuple[dict, object]]


def bikes_stream(n: int = 300, seed: int = 42) -> Stream:
    """Three stations, one event each per hour; demand = station level + 10 in daytime + noise.

    The weather is pure noise and there is an extra string key the preset must ignore.
    """
    rng = random.Random(seed)
    level = {"A": 5.0, "B": 15.0, "C": 30.0}
    start = dt.datetime(2026, 5, 1)
    events = []
    for i in range(n):
        moment = start + dt.timedelta(hours=i // 3)
        station = "ABC"[i % 3]
        y = level[station] + (10.0 if 7 <= moment.hour <= 19 else 0.0) + rng.gauss(0, 1)
        x = {
            "station": station,
            "moment": moment.isoformat(),
            "clouds": rng.uniform(0, 100),
            "humidity": rng.uniform(20, 90),
            "pressure": rng.gauss(1013, 5),
            "temperature": rng.gauss(15, 5),
            "wind": rng.uniform(0, 10),
            "source": "ignored",
        }
        events.append((x, y))
    return events


def m5_stream(n: int = 300, seed: int = 42) -> Stream:
    """Three items in one store, one event each per day; sales = item level + weekday + noise."""
    rng = random.Random(seed)
    level = {"HOBBIES_1_001": 2.0, "FOODS_3_090": 20.0, "HOUSEHOLD_2_013": 8.0}
    by_weekday = [0.0, 0.0, 0.0, 1.0, 3.0, 8.0, 6.0]
    start = dt.date(2016, 1, 4)  # a Monday
    events = []
    for i in range(n):
        item = list(level)[i % 3]
        day = start + dt.timedelta(days=i // 3)
        y = level[item] + by_weekday[day.weekday()] + rng.gauss(0, 1)
        x = {"id": f"{item}_CA_1_validation", "date": day.isoformat(), "snap_CA": 1}
        events.append((x, y))
    return events


def numeric_stream(n: int = 300, seed: int = 42) -> Stream:
    """y = 3a - 2b + 1 + noise."""
    rng = random.Random(seed)
    events = []
    for _ in range(n):
        x = {"a": rng.uniform(-1, 1), "b": rng.uniform(-1, 1)}
        events.append((x, 3 * x["a"] - 2 * x["b"] + 1 + rng.gauss(0, 0.1)))
    return events


def points_stream(n: int = 300, seed: int = 42) -> Stream:
    """Observations for a detector: two numbers near (0.3, 0.7), every 20th far off, and a
    text feature (the key) that the preset must ignore; the second item is unused."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        far = i % 20 == 19
        x = {"a": rng.gauss(3.0 if far else 0.3, 0.05), "b": rng.gauss(0.7, 0.05), "key": "k"}
        events.append((x, None))
    return events


def counts_stream(n: int = 300, seed: int = 42) -> Stream:
    """Observations for `bikes-anomaly`: the bikes stream with its count in `x`, no target."""
    return [({**x, "bikes": y}, None) for x, y in bikes_stream(n, seed)]


def binary_stream(n: int = 300, seed: int = 42) -> Stream:
    """Linearly separable: y = a + b > 0."""
    rng = random.Random(seed)
    events = []
    for _ in range(n):
        x = {"a": rng.uniform(-1, 1), "b": rng.uniform(-1, 1)}
        events.append((x, x["a"] + x["b"] > 0))
    return events


STREAMS = {
    "linear-regression": numeric_stream,
    "logistic-regression": binary_stream,
    "knn-regression": numeric_stream,
    "bikes": bikes_stream,
    "m5": m5_stream,
    "m5-knn": m5_stream,
    "half-space-trees": points_stream,
    "bikes-anomaly": counts_stream,
}


def outputs(model, x: dict) -> tuple:
    """What a model answers for `x`: the prediction, and the probabilities for a classifier;
    a detector's score."""
    if isinstance(model, base.AnomalyDetector):
        return (model.score_one(x),)
    # A Pipeline has `predict_proba_one` whatever its last step; isinstance asks the last step.
    proba = model.predict_proba_one(x) if isinstance(model, base.Classifier) else None
    return model.predict_one(x), proba


def learn_all(model, events: Stream) -> None:
    detector = isinstance(model, base.AnomalyDetector)
    for x, y in events:
        model.learn_one(x) if detector else model.learn_one(x, y)


def before_regressor(model, x: dict) -> dict:
    """`x` as the final regressor sees it: every pipeline step but the last, in order."""
    for step in list(model.steps.values())[:-1]:
        x = step.transform_one(x)
    return x


def test_presets_are_the_documented_names():
    assert set(PRESETS) == set(STREAMS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_fresh_model_pickles_and_the_copy_learns_the_same(name):
    events = STREAMS[name](100)  # more than a detector's first window, which scores 0
    model = PRESETS[name]()
    copy = pickle.loads(pickle.dumps(model))
    learn_all(model, events[:70])
    learn_all(copy, events[:70])
    for x, _ in events[70:]:
        assert outputs(copy, x) == outputs(model, x)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_trained_model_pickles_and_the_copy_predicts_the_same(name):
    events = STREAMS[name](100)
    model = PRESETS[name]()
    learn_all(model, events[:70])
    copy = pickle.loads(pickle.dumps(model))
    for x, _ in events[70:]:
        assert outputs(copy, x) == outputs(model, x)


# Hash seeds under which `compose.Select`'s set of keys came back from a pickle in another
# order, so the copy summed the same features in another order (a last-bit difference).
SEEDS_THAT_REORDERED_A_SET = ("14", "17", "56")


@pytest.mark.parametrize("seed", SEEDS_THAT_REORDERED_A_SET)
def test_a_pickled_copy_predicts_bit_for_bit_whatever_the_hash_seed(seed):
    check = (
        "import sys; from tests.unit import test_presets as t\n"
        "for name in sorted(t.PRESETS):\n"
        "    t.test_a_trained_model_pickles_and_the_copy_predicts_the_same(name)\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_call_gives_an_independent_model(name):
    events = STREAMS[name](150)
    first, second = PRESETS[name](), PRESETS[name]()
    assert first is not second
    learn_all(second, events[:60])
    probes = [x for x, _ in events[120:]]
    before = [outputs(second, x) for x in probes]
    learn_all(first, events[60:120])
    assert [outputs(second, x) for x in probes] == before
    assert [outputs(first, x) for x in probes] != before


@pytest.mark.parametrize("name", ["bikes", "m5"])
def test_beats_a_constant_mean_on_a_learnable_stream(name):
    events = STREAMS[name]()
    preset = evaluate.progressive_val_score(events, PRESETS[name](), metrics.MAE())
    baseline = evaluate.progressive_val_score(
        events, dummy.StatisticRegressor(stats.Mean()), metrics.MAE()
    )
    # Measured with these seeds: bikes 3.03 vs 9.94, m5 2.61 vs 7.13.
    assert preset.get() < 0.5 * baseline.get(), (preset, baseline)


def test_bikes_features_are_weather_plus_two_distinct_target_aggregates():
    model = PRESETS["bikes"]()
    events = bikes_stream()
    learn_all(model, events)
    features = before_regressor(model, events[-1][0])
    aggregates = sorted(set(features) - set(BIKES_WEATHER))
    assert set(BIKES_WEATHER) <= set(features)
    assert len(aggregates) == 2, features
    assert aggregates[0].startswith("y_hourly_") and aggregates[0].endswith("_by_station_and_hour")
    assert aggregates[1].startswith("y_recent_") and aggregates[1].endswith("_by_station")
    assert all(isinstance(value, float) for value in features.values())


def test_bikes_parses_the_hour_and_keeps_the_station():
    model = PRESETS["bikes"]()
    union = model.steps["TransformerUnion"]
    hour_branch = next(t for t in union.transformers.values() if hasattr(t, "steps"))
    add_hour = next(iter(hour_branch.steps.values()))
    x = {"station": "A", "moment": "2026-05-01T13:00:00Z", "wind": 3.0}
    assert add_hour.transform_one(x) == {**x, "hour": 13}


def test_m5_features_are_three_distinct_target_aggregates():
    model = PRESETS["m5"]()
    events = m5_stream()
    learn_all(model, events)
    features = before_regressor(model, events[-1][0])
    names = sorted(features)
    target_names = ["item_mean_28", "item_mean_7", "weekday_mean_4"]
    assert len(names) == 3, features
    for name, target_name in zip(names, target_names, strict=True):
        assert name.startswith(f"{target_name}_"), names
    # Separate aggregates, not one overwriting the others: the three values differ.
    assert len({round(value, 6) for value in features.values()}) == 3, features


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (
            {"id": "HOBBIES_1_001_CA_1", "date": "2016-01-04"},
            {"item": "HOBBIES_1_001", "store": "CA_1", "weekday": 0},
        ),
        (
            {"id": "FOODS_3_090_TX_2_validation", "date": "2016-01-10", "extra": 1},
            {"item": "FOODS_3_090", "store": "TX_2", "weekday": 6},
        ),
        (
            {"id": "HOUSEHOLD_2_013_WI_3_evaluation", "date": "2016-05-22"},
            {"item": "HOUSEHOLD_2_013", "store": "WI_3", "weekday": 6},
        ),
    ],
)
def test_m5_parses_item_store_and_weekday(x, expected):
    parse = next(iter(PRESETS["m5"]().steps.values()))
    assert parse.transform_one(x) == expected


def test_logistic_regression_learns_a_separable_problem():
    accuracy = evaluate.progressive_val_score(
        binary_stream(), PRESETS["logistic-regression"](), metrics.Accuracy()
    )
    assert accuracy.get() > 0.8, accuracy


def test_knn_regression_predicts_a_number_after_a_few_events():
    model = PRESETS["knn-regression"]()
    events = numeric_stream(10)
    learn_all(model, events[:5])
    prediction = model.predict_one(events[5][0])
    assert isinstance(prediction, float) and math.isfinite(prediction)


@pytest.mark.parametrize(
    ("preset", "estimator", "rows"),
    [
        ("linear-regression", linear_model.LinearRegression, chick_rows),
        ("logistic-regression", linear_model.LogisticRegression, phishing_rows),
    ],
)
def test_numeric_presets_equal_the_bare_river_pipelines_on_numeric_data(preset, estimator, rows):
    data = rows()
    ours, theirs = PRESETS[preset](), preprocessing.StandardScaler() | estimator()
    for _, x, y in data:
        assert ours.predict_one(x) == theirs.predict_one(x)
        ours.learn_one(x, y)
        theirs.learn_one(x, y)


def test_numeric_presets_ignore_text_features_such_as_the_key():
    model = PRESETS["linear-regression"]()
    for i in range(20):
        model.learn_one({"station": "station-7", "a": float(i)}, 2.0 * i)
    assert model.predict_one({"station": "station-7", "a": 3.0}) != 0.0  # it learned


def test_half_space_trees_scores_as_river_on_numeric_data_and_flags_the_far_points():
    events = points_stream(400)
    ours = PRESETS["half-space-trees"]()
    theirs = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(window_size=50, seed=42)
    scores = []
    for x, _ in events:
        numeric = {name: value for name, value in x.items() if name != "key"}
        scores.append(ours.score_one(x))
        assert scores[-1] == theirs.score_one(numeric)
        ours.learn_one(x)
        theirs.learn_one(numeric)
    later = list(enumerate(scores))[100:]
    far = [score for i, score in later if i % 20 == 19]
    near = sorted(score for i, score in later if i % 20 != 19)
    assert min(far) > near[int(0.95 * len(near))], (far, near[-10:])
