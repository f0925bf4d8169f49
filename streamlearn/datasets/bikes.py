"""A synthetic bike-sharing stream: bikes available at each station, with the city's weather.

Stand-in for the classic demo of predicting the number of available bikes at each station of a
city from the weather, generated from a fixed seed so nothing has to be downloaded. The weather
is shared by all stations at one moment and drifts smoothly (mean-reverting random walks plus a
daily temperature cycle). Each station has a capacity, a base occupancy and a daily profile:
"residential" stations are full at night and empty in the 7-9h rush, "business" stations the
opposite, "leisure" stations fill up on weekend afternoons. Rain and cold keep stations close
to their base level, and the count moves toward its target with noise, so it is autocorrelated.

A `Fault` breaks a station's counter for a while: it reports a constant (0 bikes by default)
whatever the station holds, as a stuck sensor would; every other row stays as without it.

    >>> row = next(bike_stream(stations=2, days=1))
    >>> tuple(row) == FIELDS
    True
    >>> row["station"], row["moment"]
    ('station-00', '2026-05-04T00:00:00')
    >>> sum(1 for _ in bike_stream(stations=2, days=1))
    48
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from os import PathLike

__all__ = ["FIELDS", "Fault", "bike_stream", "write_csv"]

FIELDS: tuple[str, ...] = (
    "station",
    "moment",
    "clouds",
    "humidity",
    "pressure",
    "temperature",
    "wind",
    "description",
    "bikes",
)

PROFILES = ("residential", "business", "leisure")
MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class Station:
    """A station's fixed traits: name, number of docks, usual fill ratio and daily profile."""

    name: str
    capacity: int
    base: float
    profile: str


@dataclass(frozen=True)
class Fault:
    """Station `station` reports `value` bikes for `hours` hours from hour `start` of the stream.

    >>> Fault.parse("station-03:72:24")
    Fault(station='station-03', start=72, hours=24, value=0)
    """

    station: str
    start: int
    hours: int
    value: int = 0

    @classmethod
    def parse(cls, text: str) -> Fault:
        """`STATION:START:HOURS`, hours counted from the stream's first moment."""
        station, _, rest = text.rpartition(":")
        station, _, start = station.rpartition(":")
        if not station or not start.isdigit() or not rest.isdigit() or int(rest) < 1:
            raise ValueError(
                f"a fault is STATION:START_HOUR:HOURS, e.g. station-03:72:24, not {text!r}"
            )
        return cls(station, int(start), int(rest))

    def covers(self, station: str, hour: float) -> bool:
        """Whether `station`'s count at `hour` (since the start) is this fault's."""
        return station == self.station and self.start <= hour < self.start + self.hours


@dataclass
class Weather:
    """The city's weather at one moment; `anomaly` is temperature minus its daily cycle."""

    pressure: float = 1015.0
    clouds: float = 40.0
    humidity: float = 60.0
    anomaly: float = 0.0
    wind: float = 3.0


def _clip(value: float, low: float, high: float) -> float:
    """`value` limited to the interval [low, high]."""
    return max(low, min(high, value))


def _revert(rng: random.Random, value: float, mean: float, rate: float, sigma: float) -> float:
    """One step of a random walk pulled toward `mean` by `rate`, with Gaussian steps of `sigma`."""
    return value + rate * (mean - value) + rng.gauss(0.0, sigma)


def _next_weather(rng: random.Random, w: Weather, hours: float) -> Weather:
    """The weather `hours` later: low pressure brings clouds, clouds bring humidity."""
    rate, scale = 1 - math.exp(-hours / 24), math.sqrt(hours)
    pressure = _clip(_revert(rng, w.pressure, 1015.0, rate, 1.2 * scale), 995.0, 1035.0)
    clouds = _revert(rng, w.clouds, 40.0 - 3.0 * (pressure - 1015.0), 2 * rate, 8.0 * scale)
    humidity = _revert(rng, w.humidity, 45.0 + 0.4 * clouds, 2 * rate, 4.0 * scale)
    anomaly = _revert(rng, w.anomaly, 0.0, rate, 0.6 * scale)
    wind = _revert(rng, w.wind, 3.0 + 0.05 * max(0.0, 1015.0 - pressure), rate, 0.8 * scale)
    clouds, humidity, wind = _clip(clouds, 0.0, 100.0), _clip(humidity, 0.0, 100.0), max(0.0, wind)
    return Weather(pressure, clouds, humidity, anomaly, wind)


def _temperature(w: Weather, moment: datetime) -> float:
    """Temperature in °C: a daily cycle (coolest near 5h), cooled a little by clouds, plus drift."""
    hour = moment.hour + moment.minute / 60
    return 14.0 - 6.0 * math.cos(2 * math.pi * (hour - 5) / 24) - 0.03 * w.clouds + w.anomaly


def _rain(w: Weather) -> int:
    """Rain level 0 (dry), 1 (light) or 2 (moderate) from clouds and humidity."""
    if w.clouds > 85 and w.humidity > 80:
        return 2
    return 1 if w.clouds > 70 and w.humidity > 70 else 0


def _description(w: Weather) -> str:
    """An OpenWeatherMap-style description of the sky."""
    rain = _rain(w)
    if rain:
        return "moderate rain" if rain == 2 else "light rain"
    if w.clouds < 20:
        return "clear sky"
    return "few clouds" if w.clouds < 50 else "broken clouds"


def _sigmoid(x: float) -> float:
    """The logistic function."""
    return 1 / (1 + math.exp(-x))


def _bump(hour: float, center: float, width: float) -> float:
    """A bell curve of height 1 at `center`."""
    return math.exp(-(((hour - center) / width) ** 2))


def _offset(profile: str, hour: float, weekend: bool) -> float:
    """How far above (+) or below (-) its base a station of `profile` sits, as a fill ratio."""
    workday = _sigmoid((hour - 8) / 0.6) - _sigmoid((hour - 18) / 0.6)  # ~1 from 8h to 18h
    if profile == "residential":
        return 0.15 - 0.3 * _bump(hour, 14, 3) if weekend else 0.3 - 0.6 * workday
    if profile == "business":
        return -0.2 if weekend else -0.3 + 0.6 * workday
    return 0.4 * _bump(hour, 15, 2.5) - 0.1 if weekend else 0.1 * _bump(hour, 18, 2) - 0.05


def _activity(rain: int, temperature: float) -> float:
    """Share of the usual riding that happens: 1 on a mild dry day, less with rain and cold."""
    cold = _clip((10.0 - temperature) / 15.0, 0.0, 0.5)
    return _clip(1.0 - (0.0, 0.4, 0.7)[rain] - cold, 0.1, 1.0)


def _make_stations(rng: random.Random, count: int) -> list[Station]:
    """Stations with random capacities and base levels; profiles rotate so all three appear."""
    width = max(2, len(str(count - 1)))
    return [
        Station(
            f"station-{i:0{width}d}",
            rng.randint(10, 40),
            rng.uniform(0.3, 0.7),
            PROFILES[i % len(PROFILES)],
        )
        for i in range(count)
    ]


def _check(stations: int, days: int, step_minutes: int, start: str) -> datetime:
    """Raise a one-line ValueError for bad arguments; return the parsed start moment."""
    if stations < 1:
        raise ValueError(f"stations must be at least 1, got {stations}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if step_minutes < 1 or MINUTES_PER_DAY % step_minutes:
        raise ValueError(f"step_minutes must divide 1440 (minutes in a day), got {step_minutes}")
    try:
        moment = datetime.fromisoformat(start)
    except ValueError:
        raise ValueError(f"start must be an ISO-8601 date-time, got {start!r}") from None
    if moment.tzinfo is not None:
        raise ValueError(f"start must have no timezone, got {start!r}")
    return moment


def bike_stream(
    stations: int = 20,
    days: int = 7,
    seed: int = 42,
    step_minutes: int = 60,
    start: str = "2026-05-04T00:00:00",
    faults: Iterable[Fault] = (),
) -> Iterator[dict]:
    """Rows in time order (all stations at one moment, then the next moment); `faults` replace
    the counts they cover."""
    moment = _check(stations, days, step_minutes, start)
    faults = tuple(faults)
    rng = random.Random(seed)
    hours = step_minutes / 60
    follow = 1 - math.exp(-hours / 1.5)  # share of the gap to the target closed per step
    city = _make_stations(rng, stations)
    levels = [s.base * s.capacity for s in city]
    weather = Weather()
    for step in range(days * MINUTES_PER_DAY // step_minutes):
        weather = _next_weather(rng, weather, hours)
        temperature = _temperature(weather, moment)
        activity = _activity(_rain(weather), temperature)
        hour, weekend = moment.hour + moment.minute / 60, moment.weekday() >= 5
        shared = {
            "moment": moment.isoformat(),
            "clouds": round(weather.clouds),
            "humidity": round(weather.humidity),
            "pressure": round(weather.pressure, 1),
            "temperature": round(temperature, 2),
            "wind": round(weather.wind, 2),
            "description": _description(weather),
        }
        for i, station in enumerate(city):
            offset = activity * _offset(station.profile, hour, weekend)
            ratio = _clip(station.base + offset, 0.0, 1.0)
            noise = rng.gauss(0.0, 0.04 * station.capacity * math.sqrt(hours))
            target = ratio * station.capacity
            level = levels[i] + follow * (target - levels[i]) + noise
            levels[i] = _clip(level, 0.0, float(station.capacity))
            bikes = round(levels[i])
            for fault in faults:
                if fault.covers(station.name, step * hours):
                    bikes = fault.value
            yield {"station": station.name, **shared, "bikes": bikes}
        moment += timedelta(minutes=step_minutes)


def write_csv(path: str | PathLike[str], rows: Iterable[dict]) -> int:
    """Write a header of FIELDS then `rows` to a CSV file at `path`; return the row count."""
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    return count
