"""The synthetic bike stream: deterministic, well formed, and with structure a model can learn."""

from __future__ import annotations

import csv
import itertools
import random
import statistics
from datetime import datetime

import pytest
from river import (
    compose,
    dummy,
    evaluate,
    feature_extraction,
    linear_model,
    metrics,
    preprocessing,
    stats,
)

from streamlearn.datasets.bikes import FIELDS, bike_stream, write_csv

WEATHER = ("clouds", "humidity", "pressure", "temperature", "wind")


def test_same_arguments_give_same_rows_and_another_seed_differs():
    assert list(bike_stream(stations=3, days=2)) == list(bike_stream(stations=3, days=2))
    assert list(bike_stream(stations=3, days=2, seed=7)) != list(bike_stream(stations=3, days=2))


@pytest.mark.parametrize(("stations", "days", "step"), [(20, 7, 60), (3, 2, 15), (1, 1, 1440)])
def test_row_count_and_time_order(stations, days, step):
    rows = list(bike_stream(stations=stations, days=days, step_minutes=step))
    assert len(rows) == stations * days * 24 * 60 // step
    moments = [datetime.fromisoformat(row["moment"]) for row in rows]
    assert moments == sorted(moments)
    assert moments[0] == datetime(2026, 5, 4) and moments[0].tzinfo is None
    assert [row["station"] for row in rows[:stations]] == [
        f"station-{i:02d}" for i in range(stations)
    ]
    assert all(tuple(row) == FIELDS for row in rows)


def test_values_are_in_range_and_weather_is_shared():
    rows = list(bike_stream(stations=5, days=14))
    for row in rows:
        assert 0 <= row["bikes"] <= 40 and isinstance(row["bikes"], int)
        assert 0 <= row["clouds"] <= 100 and 0 <= row["humidity"] <= 100
        assert 990 <= row["pressure"] <= 1040 and -15 <= row["temperature"] <= 40
        assert 0 <= row["wind"] <= 25
        assert row["description"] in {
            "clear sky",
            "few clouds",
            "broken clouds",
            "light rain",
            "moderate rain",
        }
    for first in range(0, len(rows), 5):
        moment = rows[first : first + 5]
        assert len({tuple(row[k] for k in (*WEATHER, "description")) for row in moment}) == 1


def test_bikes_are_autocorrelated():
    bikes = [row["bikes"] for row in bike_stream(stations=1, days=14)]
    shuffled = random.Random(0).sample(bikes, len(bikes))
    assert mean_step(bikes) < mean_step(shuffled) / 2


def mean_step(values: list[int]) -> float:
    """Mean absolute change from one value to the next."""
    return statistics.mean(abs(a - b) for a, b in itertools.pairwise(values))


def test_business_stations_are_fuller_at_noon_on_weekdays_than_at_weekends():
    rows = [r for r in bike_stream(stations=2, days=28) if r["station"] == "station-01"]
    noon = [r for r in rows if r["moment"].endswith("T12:00:00")]
    weekday = [r["bikes"] for r in noon if datetime.fromisoformat(r["moment"]).weekday() < 5]
    weekend = [r["bikes"] for r in noon if datetime.fromisoformat(r["moment"]).weekday() >= 5]
    assert statistics.mean(weekday) > statistics.mean(weekend) + 3


def add_calendar(x: dict) -> dict:
    """The row with the hour of its moment and whether it is a weekend, to group by."""
    moment = datetime.fromisoformat(x["moment"])
    return {**x, "hour": moment.hour, "weekend": moment.weekday() >= 5}


def learner(by: list[str]) -> compose.Pipeline:
    """Weather plus the running mean of bikes per `by` group, into a linear regression."""
    return (
        compose.Select(*WEATHER)
        + (
            add_calendar
            | feature_extraction.TargetAgg(by=by, how=stats.Mean(), target_name="by_hour")
        )
        | preprocessing.StandardScaler()
        | linear_model.LinearRegression()
    )


def mae(model, station: str) -> float:
    """Progressive validation MAE of `model` on four weeks of one station."""
    rows = (r for r in bike_stream(stations=3, days=28) if r["station"] == station)
    dataset = (({k: v for k, v in r.items() if k != "bikes"}, r["bikes"]) for r in rows)
    return evaluate.progressive_val_score(dataset, model, metrics.MAE()).get()


@pytest.mark.parametrize("station", ["station-00", "station-01"])  # residential, business
def test_daily_cycle_is_learnable(station):
    baseline = dummy.StatisticRegressor(stats.Mean())
    assert mae(learner(["station", "hour"]), station) < 0.7 * mae(baseline, station)


def test_weekly_cycle_is_learnable():
    by_hour = mae(learner(["station", "hour"]), "station-01")
    by_weekend_and_hour = mae(learner(["station", "weekend", "hour"]), "station-01")
    assert by_weekend_and_hour < 0.8 * by_hour


def test_write_csv_round_trips(tmp_path):
    rows = list(bike_stream(stations=2, days=1))
    path = tmp_path / "bikes.csv"
    assert write_csv(path, iter(rows)) == len(rows) == 48
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        read = list(reader)
    assert tuple(reader.fieldnames) == FIELDS
    assert read == [{k: str(v) for k, v in row.items()} for row in rows]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stations": 0}, "stations"),
        ({"days": 0}, "days"),
        ({"step_minutes": 7}, "step_minutes"),
        ({"step_minutes": 0}, "step_minutes"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_bad_arguments_raise_one_line_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        next(bike_stream(**kwargs))
    assert "\n" not in str(error.value)
