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

Expiry runs on event time: each key's watermark is the latest `ts` of its observations, and
pending observations, early labels and the memory of learned ids older than the watermark minus
`horizon` are dropped when the key is next touched. Event time keeps replay and the worker
identical and makes a restart or a backlog expire nothing that real time would have kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from river import metrics

from streamlearn.events import EventId, Label, Observation, Reason, Rejected, check_target
from streamlearn.models import is_classifier, learn, predict

DEFAULT_HORIZON = 7 * 24 * 3600.0  # seconds of event time a pending entry waits for its match
DEFAULT_MAX_PENDING = 1000  # per key and per kind, whatever the horizon: state stays bounded

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
    watermark: float = -math.inf
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
        self.classifier = is_classifier(factory())

    def new_state(self) -> KeyState:
        metric = metrics.Accuracy() if self.classifier else metrics.MAE()
        return KeyState(model=self.factory(), metric=metric)

    def observe(self, state: KeyState, key: str, obs: Observation) -> Step:
        """Predict at once; learn at once too if the label came first, else remember."""
        expired = self._advance(state, obs.ts)
        if obs.id in state.pending or obs.id in state.learned:
            return Step("duplicate", expired=expired)
        try:
            y_pred, proba = predict(state.model, obs.x, self.classifier)
        except Exception as error:  # a model may raise on any feature: dead-letter, go on
            return Step("dead_lettered", expired=expired, error=_model_error("predict", error))
        pending = Pending(obs.x, y_pred, proba, state.n_learned, obs.ts)
        step = Step("predicted", pending.prediction(key, obs.id, self.name), expired=expired)
        early = state.early.pop(obs.id, None)
        if early is None:
            state.pending[obs.id] = pending
            step.expired += _cap(state.pending, self.max_pending)
        else:
            step.error = self._learn(state, obs.id, obs.x, early[0], pending, obs.ts)
            step.learned = int(step.error is None)
        return step

    def label(self, state: KeyState, key: str, label: Label) -> Step:
        """Learn from the pending observation with this id (or the label's own `x`)."""
        check_target(label.y, self.classifier)
        expired = self._advance(state, -math.inf)
        if label.id in state.learned or label.id in state.early:
            return Step("duplicate", expired=expired)
        pending = state.pending.pop(label.id, None)
        if label.x is None and pending is None:
            state.early[label.id] = (label.y, label.ts)
            return Step("waiting", expired=expired + _cap(state.early, self.max_pending))
        x = label.x if label.x is not None else pending.x
        ts = pending.ts if pending is not None else label.ts
        error = self._learn(state, label.id, x, label.y, pending, ts)
        if error is not None:
            return Step("dead_lettered", expired=expired, error=error)
        return Step("joined", learned=1, expired=expired)

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

    def _advance(self, state: KeyState, ts: float) -> int:
        """Move the key's event-time watermark to `ts` and drop what is older than the horizon."""
        if ts > state.watermark:
            state.watermark = ts
        cutoff = state.watermark - self.horizon
        expired = _drop_before(state.pending, cutoff, lambda p: p.ts)
        expired += _drop_before(state.early, cutoff, lambda e: e[1])
        _drop_before(state.learned, cutoff, lambda ts: ts)
        return expired


def _drop_before(entries: dict, cutoff: float, ts_of: Callable[[Any], float]) -> int:
    """Drop entries older than `cutoff` from the front (entries are kept in arrival order)."""
    dropped = 0
    while entries:
        oldest = next(iter(entries))
        if ts_of(entries[oldest]) >= cutoff:
            break
        del entries[oldest]
        dropped += 1
    return dropped


def _cap(entries: dict, limit: int) -> int:
    """Drop the oldest entries beyond `limit`; return how many."""
    dropped = 0
    while len(entries) > limit:
        del entries[next(iter(entries))]
        dropped += 1
    return dropped


def _model_error(action: str, error: Exception) -> Rejected:
    return Rejected(Reason.MODEL_ERROR, f"the model raised in {action}: {error!r:.200}")
