"""`streamlearn replay`: progressive validation over a file, offline, with the worker's own code.

Each event goes through the same `Processor` (parsing, dedup, the learning core) that the Faust
agent runs, with states that never leave memory, so for the same events in the
same order replay and the worker give identical predictions.

With several candidates per key it also scores each candidate over all keys, as if it had
served alone, and notes where each key's serving candidate last changed. With an anomaly
detector and a threshold it counts each key's flagged observations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamlearn.learning.core import KeyState, Learner
from streamlearn.learning.events import DEFAULT_MAX_EVENT_BYTES
from streamlearn.learning.processor import Processor, Record
from streamlearn.learning.state import PartitionStates
from streamlearn.settings import Topics
from streamlearn.source import Event


@dataclass(frozen=True, slots=True)
class Switch:
    """The latest change of a key's serving candidate, seen in its predictions."""

    order: int  # the event's position in the replay: bigger is more recent
    n_learned: int  # labels the key had learned when the new leader first served
    before: str
    after: str
    count: int  # changes of this key's serving candidate in the whole replay


@dataclass(frozen=True, slots=True)
class Flagged:
    """A key's observations flagged `is_anomaly`: how many, and the first and latest ids."""

    count: int
    first: Any
    last: Any


@dataclass
class ReplayResult:
    """Per-key states (with their metrics), an overall metric, and the processor's counters.

    `names` are the candidates', `candidates` each one's overall metric (its predictions over
    every key, as if it had served alone), `switches` each key's latest change of leader,
    `flagged` each key's anomalies.
    """

    states: dict[str, KeyState]
    overall: Any
    counters: dict[str, int]
    seconds: float
    dead_letters: list[dict] = field(default_factory=list)
    examples: dict[str, str] = field(default_factory=dict)  # behind each warning, for alerts
    names: tuple[str, ...] = ()
    candidates: dict[str, Any] = field(default_factory=dict)
    switches: dict[str, Switch] = field(default_factory=dict)
    flagged: dict[str, Flagged] = field(default_factory=dict)


def replay_events(
    events: Iterable[Event],
    learner: Learner,
    on_prediction: Callable[[bytes], None] | None = None,
    on_event: Callable[[], None] | None = None,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> ReplayResult:
    """Run `events` through the worker's processing, in order, and measure as it goes."""
    topics = Topics()
    processor = Processor(learner, topics, partitions=1, max_event_bytes=max_event_bytes)
    store = PartitionStates(load=lambda key: None, size=0)  # nothing is ever evicted here
    overall = learner.new_metric()
    candidates = (
        {name: learner.new_metric() for name in learner.names} if len(learner.names) > 1 else {}
    )
    predicted: dict[tuple[str, Any], dict] = {}
    serving: dict[str, str] = {}
    switches: dict[str, Switch] = {}
    flagged: dict[str, Flagged] = {}
    truth: dict[tuple[str, Any], Any] = {}
    dead_letters = []
    start = time.monotonic()
    now = time.time()  # stands in for the Kafka record time of events without `ts`
    for offset, event in enumerate(events):
        is_label = event.kind == "label"
        event_key = (event.key, event.value.get("id"))
        if is_label and "y" in event.value:
            truth[event_key] = event.value["y"]
        record = Record(
            topics.labels if is_label else topics.observations,
            0, offset, now, event.key.encode(), orjson.dumps(event.value),
        )  # fmt: skip
        learned_before = processor.counters.learned
        for output in processor.process(record, store):
            if output.topic == topics.predictions:
                prediction = predicted[event_key] = orjson.loads(output.value)
                _note_switch(switches, serving, prediction, offset)
                if prediction.get("is_anomaly"):
                    _note_flag(flagged, prediction)
                if on_prediction is not None:
                    on_prediction(output.value)
            else:
                dead_letters.append(orjson.loads(output.value))
        if processor.counters.learned > learned_before and event_key in truth:
            prediction, y = predicted.pop(event_key), truth.pop(event_key)
            if prediction["y_pred"] is not None:
                overall.update(y, prediction["y_pred"])
            for name, y_pred in prediction.get("candidates", {}).items():
                if y_pred is not None:
                    candidates[name].update(y, y_pred)
        if on_event is not None:
            on_event()
    states = {key.decode(): state for key, state in store.live.items()}
    seconds = time.monotonic() - start
    counters = processor.counters
    return ReplayResult(
        states, overall, counters.as_dict(), seconds, dead_letters, dict(counters.examples),
        learner.names, candidates, switches, flagged,
    )  # fmt: skip


def _note_switch(
    switches: dict[str, Switch], serving: dict[str, str], prediction: dict, order: int
) -> None:
    """Record it when `prediction` is served by another candidate than the key's previous one."""
    key, model = prediction["key"], prediction["model"]
    before = serving.get(key, model)
    serving[key] = model
    if before != model:
        count = switches[key].count + 1 if key in switches else 1
        switches[key] = Switch(order, prediction["n_learned"], before, model, count)


def _note_flag(flagged: dict[str, Flagged], prediction: dict) -> None:
    """Count an observation flagged as an anomaly for its key."""
    key, event_id = prediction["key"], prediction["id"]
    before = flagged.get(key)
    first = before.first if before is not None else event_id
    flagged[key] = Flagged((before.count if before is not None else 0) + 1, first, event_id)
