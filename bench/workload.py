"""The events every measurement of one configuration is fed: generated once, seeded.

`linear-regression` gets a synthetic stream: each key has its own hidden linear law over four
numeric features, and keys are visited in shuffled rounds, so every key occurs as evenly as the
event count allows. `bikes` gets the project's own bike-station stream (keys are stations).
Both go through `streamlearn.source.to_events` with a count delay, as `streamlearn produce`
would send them: each label comes after `label_delay` more observations.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from streamlearn.datasets.bikes import bike_stream
from streamlearn.source import Columns, Event, to_events

FEATURES = ("f0", "f1", "f2", "f3")
SEED = 42


@dataclass(frozen=True)
class Workload:
    """One configuration's events in production order, and what they add up to."""

    model: str
    events: list[Event]
    pairs: int  # observations, each with exactly one label
    keys: int  # distinct keys that occur

    def encoded(self, pairs: int | None = None) -> list[tuple[bool, bytes, bytes]]:
        """`(is_observation, key, value)` as Kafka bytes, encoded ahead of any timed section.

        With `pairs`, only the first `pairs` observations and their labels, in order.
        """
        limit = self.pairs if pairs is None else pairs
        return [
            (e.kind == "observation", e.key.encode(), orjson.dumps(e.value))
            for e in self.events
            if e.value["id"] < limit
        ]


def make_workload(model: str, keys: int, pairs: int, label_delay: int) -> Workload:
    """The seeded workload for `model`; presets other than `bikes` get the linear stream."""
    if model == "bikes":
        rows = bike_rows(keys, pairs)
        columns = Columns(key="station", target="bikes")
        events = list(to_events(rows, columns, delay=label_delay))
    else:
        rows = linear_rows(keys, pairs)
        columns = Columns(key="key", target="y")
        events = [_without_key(e) for e in to_events(rows, columns, delay=label_delay)]
    distinct = len({e.key for e in events})
    return Workload(model, events, pairs=len(rows), keys=distinct)


def linear_rows(keys: int, pairs: int, seed: int = SEED) -> list[dict]:
    """`pairs` rows `{key, f0..f3, y}`: y follows the key's own linear law plus a little noise."""
    rng = random.Random(seed)
    laws = [[rng.uniform(-3.0, 3.0) for _ in range(len(FEATURES) + 1)] for _ in range(keys)]
    rows = []
    for index in itertools.islice(_shuffled_rounds(rng, keys), pairs):
        *weights, bias = laws[index]
        x = {name: round(rng.gauss(0.0, 1.0), 4) for name in FEATURES}
        y = bias + sum(w * x[name] for w, name in zip(weights, FEATURES, strict=True))
        rows.append({"key": f"key-{index:06d}", **x, "y": round(y + rng.gauss(0.0, 0.1), 4)})
    return rows


def bike_rows(stations: int, pairs: int) -> list[dict]:
    """The first `pairs` rows of `bike_stream` over `stations` stations, with enough days."""
    days = max(1, math.ceil(pairs / (stations * 24)))
    return list(itertools.islice(bike_stream(stations=stations, days=days), pairs))


def _shuffled_rounds(rng: random.Random, keys: int) -> Iterator[int]:
    """Key indexes forever: every key once per round, in a fresh random order each round."""
    order = list(range(keys))
    while True:
        rng.shuffle(order)
        yield from order


def _without_key(event: Event) -> Event:
    """An observation without its key among the features (linear models want numbers only)."""
    if event.kind != "observation":
        return event
    x = {name: value for name, value in event.value["x"].items() if name != "key"}
    return Event(event.kind, event.key, {**event.value, "x": x})
