"""The learning core: per-key state and the predict-then-learn join, pure Python without I/O.

The Faust agents, `streamlearn replay` and the tests run this same code, so what the worker does
on Kafka is what replay does on a file. Per key, `Learner.observe` and `Learner.label` turn
`(state, event)` into an updated state and a `Step` (what happened, what to emit).

    >>> from streamlearn.models import load_factory
    >>> learner = Learner(load_factory("linear-regression"), name="linear-regression")
    >>> state = learner.new_state()
    >>> learner.observe(state, "k", Observation(1, {"t": 1.0}, ts=0.0)).outcome
    'predicted'
    >>> learner.label(state, "k", Label(1, 2.0, ts=1.0)).outcome, state.n_learned
    ('joined', 1)
    >>> learner.label(state, "k", Label(1, 2.0, ts=2.0)).outcome
    'duplicate'

Expiry runs on each key's own event-time clock, which only accepted observations move, and only
to a time that two of them in a row agree on: `clock = max(clock, min(previous ts, ts))`. So
one wrong time (a typo'd year, an event stamped with today's record time in a stream of 2016
dates) moves no clock, while a real jump moves it at the next observation. Pending observations,
early labels and the memory of learned ids whose time is more than `horizon` behind the clock
are dropped when the clock moves. Event time keeps replay and the worker identical and makes a
restart or a backlog expire nothing that the data itself would have kept.

A key takes its kind of time (`ts` in the events, or the record time) from its first accepted
event; an event with the other kind is given the key's latest observation time instead, so a
producer that forgets `ts` cannot move a key's clock to today. Such events are flagged in
their `Step.warnings` for the worker to report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from river import metrics

from streamlearn.events import EventId, Label, Observation, Reason, Rejected, check_target
from streamlearn.models import feature_check, is_classifier, learn, predict

DEFAULT_HORIZON = 7 * 24 * 3600.0  # seconds of event time a pending entry waits for its match
DEFAULT_MAX_PENDING = 1000  # per key and per kind, whatever the horizon: state stays bounded
WARNINGS = {
    "mixed_time": 'an event without "ts" on a key whose events carry one, or the reverse:'
    " given the key's latest observation time",
    "no_features": "an observation with no feature the model can use (it keeps only numbers)",
}

JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


@dataclass(slots=True)
class Pending:
    """What an observation leaves for its label: its features and the prediction it got."""

    x: dict
    y_pred: Any
    proba: dict | None
    n_learned: int
    ts: float

    def prediction(self, key: str, event_id: EventId, model: str) -> Prediction:
        """The prediction this observation was answered with (re-sent as is on redelivery)."""
        return Prediction(key, event_id, self.y_pred, self.proba, model, self.n_learned, self.ts)


@dataclass(slots=True)
class KeyState:
    """Everything streamlearn keeps for one key; one value in the state table."""

    model: Any
    metric: Any
    n_learned: int = 0
    pending: dict[EventId, Pending] = field(default_factory=dict)
    early: dict[EventId, tuple[Any, float]] = field(default_factory=dict)
    learned: dict[EventId, float] = field(default_factory=dict)
    clock: float = -math.inf  # event time that two accepted observations in a row agree on
    last_ts: float | None = None  # the latest accepted observation's time
    timed: bool | None = None  # whether the key's events carry `ts` (None: no event yet)
    offsets: dict[str, int] = field(default_factory=dict)

    def applied(self, source: str, offset: int) -> bool:
        """True when the record at `offset` of `source` already changed this state."""
        return offset <= self.offsets.get(source, -1)

    def mark_applied(self, source: str, offset: int) -> None:
        """Remember the source position, so a redelivery after a crash is not applied twice."""
        self.offsets[source] = offset


@dataclass(frozen=True, slots=True)
class Prediction:
    """One answer to one observation, as written to the predictions topic."""

    key: str
    id: EventId
    y_pred: Any
    proba: dict | None
    model: str
    n_learned: int
    ts: float

    def to_json(self) -> bytes:
        event = {
            "key": self.key,
            "id": self.id,
            "y_pred": self.y_pred,
            "model": self.model,
            "n_learned": self.n_learned,
            "ts": self.ts,
        }
        if self.proba is not None:
            event["proba"] = self.proba
        return orjson.dumps(event, option=JSON_OPTIONS)


@dataclass(slots=True)
class Step:
    """What one event did to its key: the outcome of the record and what to emit."""

    outcome: str  # predicted | joined | waiting | duplicate | dead_lettered
    prediction: Prediction | None = None
    learned: int = 0
    expired: int = 0
    error: Rejected | None = None  # the model raised: the record also goes to the dead letters
    warnings: tuple[str, ...] = ()  # see WARNINGS: kept, but the user should know


class Learner:
    """Applies the events of one key to that key's state: predict on observations, learn on labels.

    `factory` makes a fresh model for a new key; `name` is written into every prediction.
    """

    def __init__(
        self,
        factory: Callable[[], Any],
        name: str,
        horizon: float = DEFAULT_HORIZON,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.factory = factory
        self.name = name
        self.horizon = horizon
        self.max_pending = max_pending
        prototype = factory()
        self.classifier = is_classifier(prototype)
        self.usable = feature_check(prototype)  # None: the model's needs are not known

    def new_state(self) -> KeyState:
        metric = metrics.Accuracy() if self.classifier else metrics.MAE()
        return KeyState(model=self.factory(), metric=metric)

    def observe(self, state: KeyState, key: str, obs: Observation) -> Step:
        """Predict at once; learn at once too if the label came first, else remember."""
        ts, mixed = self._event_time(state, obs.ts, obs.timed)
        if obs.id in state.pending or obs.id in state.learned:
            return Step("duplicate")
        try:
            y_pred, proba = predict(state.model, obs.x, self.classifier)
        except Exception as error:  # a model may raise on any feature: dead-letter, go on
            return Step("dead_lettered", error=_model_error("predict", error))
        if state.timed is None:
            state.timed = obs.timed
        expired = 0 if mixed else self._tick(state, ts)
        pending = Pending(obs.x, y_pred, proba, state.n_learned, ts)
        step = Step("predicted", pending.prediction(key, obs.id, self.name), expired=expired)
        step.warnings = self._warnings(mixed, obs.x)
        early = state.early.pop(obs.id, None)
        if early is None:
            state.pending[obs.id] = pending
            step.expired += _cap(state.pending, self.max_pending)
        else:
            step.error = self._learn(state, obs.id, obs.x, early[0], pending, ts)
            step.learned = int(step.error is None)
        return step

    def label(self, state: KeyState, key: str, label: Label) -> Step:
        """Learn from the pending observation with this id (or the label's own `x`)."""
        check_target(label.y, self.classifier)
        if label.id in state.learned or label.id in state.early:
            return Step("duplicate")
        ts, mixed = self._event_time(state, label.ts, label.timed)
        warnings = ("mixed_time",) if mixed else ()
        pending = state.pending.pop(label.id, None)
        if label.x is None and pending is None:
            state.early[label.id] = (label.y, ts)
            step = Step("waiting", expired=_cap(state.early, self.max_pending), warnings=warnings)
        else:
            x = label.x if label.x is not None else pending.x
            error = self._learn(state, label.id, x, label.y, pending, pending.ts if pending else ts)
            if error is not None:
                return Step("dead_lettered", error=error, warnings=warnings)
            step = Step("joined", learned=1, warnings=warnings)
        if state.timed is None:
            state.timed = label.timed
        return step

    def _learn(
        self,
        state: KeyState,
        event_id: EventId,
        x: dict,
        y: Any,
        pending: Pending | None,
        ts: float,
    ) -> Rejected | None:
        try:
            state.model = learn(state.model, x, y)
        except Exception as error:  # the model is left as it was when it raised
            return _model_error("learn", error)
        state.n_learned += 1
        state.learned[event_id] = ts
        _cap(state.learned, self.max_pending)
        if pending is not None and pending.y_pred is not None and pending.y_pred != {}:
            state.metric.update(y, pending.y_pred)
        return None

    def _event_time(self, state: KeyState, ts: float, timed: bool) -> tuple[float, bool]:
        """The event's time for this key, and whether its kind of time is not the key's."""
        if state.timed is None or timed == state.timed:
            return ts, False
        return (state.last_ts if state.last_ts is not None else ts), True

    def _tick(self, state: KeyState, ts: float) -> int:
        """Move the key's clock with an accepted observation; drop what falls behind the horizon."""
        if state.last_ts is not None:
            state.clock = max(state.clock, min(state.last_ts, ts))
        state.last_ts = ts
        cutoff = state.clock - self.horizon
        expired = _drop_before(state.pending, cutoff, state.clock, lambda p: p.ts)
        expired += _drop_before(state.early, cutoff, state.clock, lambda e: e[1])
        _drop_before(state.learned, cutoff, state.clock, lambda ts: ts)
        return expired

    def _warnings(self, mixed: bool, x: dict) -> tuple[str, ...]:
        warnings = ("mixed_time",) if mixed else ()
        if self.usable is not None and not self.usable(x):
            warnings += ("no_features",)
        return warnings


def _drop_before(entries: dict, cutoff: float, clock: float, ts_of: Callable[[Any], float]) -> int:
    """Drop entries older than `cutoff`; return how many.

    Entries sit in arrival order, which is time order but for outliers. The scan from the front
    stops at the first entry that is neither expired nor ahead of the clock: one stamped in the
    future (a typo'd year) is passed over, so it shields nothing behind it.
    """
    expired = []
    for event_id, entry in entries.items():
        ts = ts_of(entry)
        if ts < cutoff:
            expired.append(event_id)
        elif ts <= clock:
            break
    for event_id in expired:
        del entries[event_id]
    return len(expired)


def _cap(entries: dict, limit: int) -> int:
    """Drop the oldest entries beyond `limit`; return how many."""
    dropped = 0
    while len(entries) > limit:
        del entries[next(iter(entries))]
        dropped += 1
    return dropped


def _model_error(action: str, error: Exception) -> Rejected:
    return Rejected(Reason.MODEL_ERROR, f"the model raised in {action}: {error!r:.200}")
