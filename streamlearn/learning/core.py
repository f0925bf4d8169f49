"""The learning core: per-key state and the predict-then-learn join, pure Python without I/O.

The Faust agents, `streamlearn replay` and the tests run this same code, so what the worker does
on Kafka is what replay does on a file. Per key, `Learner.observe` and `Learner.label` turn
`(state, event)` into an updated state and a `Step` (what happened, what to emit).

    >>> from streamlearn.learning.models import load_candidates
    >>> learner = Learner(load_candidates(["linear-regression"]))
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

A key may keep several candidate models (`--model` given more than once): every observation is
predicted by each, every label teaches each, and each candidate keeps the key's own progressive
metric of its predictions (MAE for regressors, accuracy for classifiers: the metric of the
answer the user receives, and the one the key's `metric` already keeps). The prediction served
is the key's leader's, chosen by `Selection`.

A key's model may instead be an anomaly detector (anomaly.py): it scores each observation, then
learns it, with no label; labels sent to such an app are rejected. With a `DriftWatch`
(drift.py), each key of a supervised app watches the error of its served predictions, and
may reset its models when that error rises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from river import metrics

from streamlearn.errors import ModelError
from streamlearn.learning.anomaly import Threshold, is_detector
from streamlearn.learning.drift import DriftWatch
from streamlearn.learning.events import EventId, Label, Observation, Reason, Rejected, check_target
from streamlearn.learning.models import Candidate, feature_check, is_classifier, learn, predict
from streamlearn.learning.presets import rolling

DEFAULT_HORIZON = 7 * 24 * 3600.0  # seconds of event time a pending entry waits for its match
DEFAULT_MAX_PENDING = 1000  # per key and per kind, whatever the horizon: state stays bounded
WARNINGS = {
    "mixed_time": 'an event without "ts" on a key whose events carry one, or the reverse:'
    " given the key's latest observation time",
    "no_features": "an observation with no feature the model can use (it keeps only numbers)",
}
KINDS = ("regressor", "classifier", "anomaly detector")
NO_THRESHOLD = Threshold()  # scores are not flagged
NO_DRIFT = DriftWatch()  # errors are not watched

JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True, slots=True)
class Selection:
    """How a key with several candidates picks the one that serves.

    The leader has the best metric over every label so far (`window` 0) or over the key's last
    `window` labels (for drift). It changes only once the key has learned `min_labels` labels
    since it last changed (or since the key's first event), so one lucky label cannot switch it
    and a rolling window cannot make it flap. Ties go to the candidate listed first.
    """

    window: int = 0
    min_labels: int = 10


@dataclass(slots=True)
class Pending:
    """What an observation leaves for its label: its features and the prediction it got.

    `candidates` holds every candidate's `y_pred` in listed order when there are several (each
    is scored against the label), and `leader` says whose prediction was served.
    """

    x: dict
    y_pred: Any
    proba: dict | None
    n_learned: int
    ts: float
    leader: int = 0
    candidates: tuple | None = None
    drift: dict | None = None  # the key's last drift as the prediction told it

    def prediction(self, key: str, event_id: EventId, names: Sequence[str]) -> Prediction:
        """The prediction this observation was answered with (re-sent as is on redelivery)."""
        candidates = None
        if self.candidates is not None:
            candidates = dict(zip(names, self.candidates, strict=True))
        return Prediction(
            key, event_id, self.y_pred, self.proba, names[self.leader], self.n_learned, self.ts,
            candidates, drift=self.drift,
        )  # fmt: skip

    def __setstate__(self, state: tuple) -> None:
        """Unpickle, also a `Pending` pickled before candidates or drift existed."""
        _set_slots(self, {"leader": 0, "candidates": None, "drift": None, **state[1]})


@dataclass(slots=True)
class KeyState:
    """Everything streamlearn keeps for one key; one value in the state table.

    `models` has one model per candidate, in listed order; `metric` scores the predictions
    served; `scores` has each candidate's own metric when there are several (else none), and
    `leader` indexes the candidate that serves since `n_learned` was `switched_at`.
    `seen` is the running quantile of an anomaly detector's scores (with `--anomaly-quantile`);
    `drift_detector` watches the served predictions' error, and `drift` describes the last drift.
    """

    models: list[Any]
    metric: Any
    scores: list[Any] = field(default_factory=list)
    leader: int = 0
    switched_at: int = 0
    n_learned: int = 0
    pending: dict[EventId, Pending] = field(default_factory=dict)
    early: dict[EventId, tuple[Any, float]] = field(default_factory=dict)
    learned: dict[EventId, float] = field(default_factory=dict)
    clock: float = -math.inf  # event time that two accepted observations in a row agree on
    last_ts: float | None = None  # the latest accepted observation's time
    timed: bool | None = None  # whether the key's events carry `ts` (None: no event yet)
    offsets: dict[str, int] = field(default_factory=dict)
    seen: Any = None
    drift_detector: Any = None
    drift: dict | None = None  # {"count", "ts", "n_learned"} of the key's last drift

    def applied(self, source: str, offset: int) -> bool:
        """True when the record at `offset` of `source` already changed this state."""
        return offset <= self.offsets.get(source, -1)

    def mark_applied(self, source: str, offset: int) -> None:
        """Remember the source position, so a redelivery after a crash is not applied twice."""
        self.offsets[source] = offset

    def __setstate__(self, state: tuple) -> None:
        """Unpickle; a state pickled before candidates existed (one `model`) becomes a state with
        that one candidate, so a worker upgraded in place keeps every key's model."""
        slots = dict(state[1])
        if "model" in slots:
            slots["models"] = [slots.pop("model")]
        defaults = {"scores": [], "leader": 0, "switched_at": 0, "seen": None}
        _set_slots(self, {**defaults, "drift_detector": None, "drift": None, **slots})


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
    candidates: dict[str, Any] | None = None  # every candidate's y_pred, when there are several
    score: float | None = None  # an anomaly detector's score (also `y_pred`)
    is_anomaly: bool | None = None  # the score flagged by the threshold, when there is one
    drift: dict | None = None  # the key's last drift, once it has drifted

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
        if self.candidates is not None:
            event["candidates"] = self.candidates
        if self.score is not None:
            event["score"] = self.score
        if self.is_anomaly is not None:
            event["is_anomaly"] = self.is_anomaly
        if self.drift is not None:
            event["drift"] = self.drift
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

    `candidates` make a key's models (one or more, all regressors or all classifiers, or one
    anomaly detector); their names go into every prediction; `selection` picks the one that
    serves when there are several. `threshold` flags an anomaly detector's scores; `drift`
    watches a supervised key's error.
    """

    def __init__(
        self,
        candidates: Sequence[Candidate],
        horizon: float = DEFAULT_HORIZON,
        max_pending: int = DEFAULT_MAX_PENDING,
        selection: Selection = Selection(),
        threshold: Threshold = NO_THRESHOLD,
        drift: DriftWatch = NO_DRIFT,
    ) -> None:
        self.candidates = tuple(candidates)
        self.names = tuple(candidate.name for candidate in self.candidates)
        self.horizon = horizon
        self.max_pending = max_pending
        self.selection = selection
        self.threshold = threshold
        self.drift = drift
        prototypes = [candidate.factory() for candidate in self.candidates]
        self.kind = _kind_of(prototypes)
        self.classifier = self.kind == "classifier"
        self.detector = self.kind == "anomaly detector"
        if threshold.flags and not self.detector:
            raise ModelError("--anomaly-quantile and --anomaly-threshold need an anomaly detector")
        if threshold.grace and not threshold.flags:
            raise ModelError("--anomaly-grace needs --anomaly-quantile or --anomaly-threshold")
        if drift.enabled and self.detector:
            raise ModelError("--drift watches the error of supervised models, not of a detector")
        if drift.resets and not drift.enabled:
            raise ModelError("--on-drift reset needs a detector: --drift adwin or page-hinkley")
        # Checks of the models whose needs are known: `x` must have a feature each can use.
        self.checks = [check for check in map(feature_check, prototypes) if check is not None]

    def new_metric(self) -> Any:
        """A fresh metric of the kind keys are scored with: accuracy or MAE (None for a
        detector: without labels there is nothing to score)."""
        if self.detector:
            return None
        return metrics.Accuracy() if self.classifier else metrics.MAE()

    def new_state(self) -> KeyState:
        models = [candidate.factory() for candidate in self.candidates]
        scores = [self._new_score() for _ in models] if len(models) > 1 else []
        return KeyState(
            models=models, metric=self.new_metric(), scores=scores,
            seen=self.threshold.new_quantile(), drift_detector=self.drift.new_detector(),
        )  # fmt: skip

    def _new_score(self) -> Any:
        metric = type(self.new_metric())
        window = self.selection.window
        return rolling(metric, window) if window else metric()

    def observe(self, state: KeyState, key: str, obs: Observation) -> Step:
        """Predict at once; learn at once too if the label came first, else remember."""
        ts, mixed = self._event_time(state, obs.ts, obs.timed)
        if obs.id in state.pending or obs.id in state.learned:
            return Step("duplicate")
        if self.detector:
            return self._score(state, key, obs, ts, mixed)
        answers = []
        for index, model in enumerate(state.models):
            try:
                answers.append(predict(model, obs.x, self.classifier))
            except Exception as error:  # a model may raise on any feature: dead-letter, go on
                return Step("dead_lettered", error=self._model_error("predict", index, error))
        if state.timed is None:
            state.timed = obs.timed
        expired = 0 if mixed else self._tick(state, ts)
        y_pred, proba = answers[state.leader]
        candidates = tuple(answer[0] for answer in answers) if len(answers) > 1 else None
        pending = Pending(
            obs.x, y_pred, proba, state.n_learned, ts, state.leader, candidates, state.drift
        )
        step = Step("predicted", pending.prediction(key, obs.id, self.names), expired=expired)
        step.warnings = self._warnings(mixed, obs.x)
        early = state.early.pop(obs.id, None)
        if early is None:
            state.pending[obs.id] = pending
            step.expired += _cap(state.pending, self.max_pending)
        else:
            learned, step.error = self._learn(state, obs.id, obs.x, early[0], pending, ts)
            step.learned = int(learned)
        return step

    def _score(self, state: KeyState, key: str, obs: Observation, ts: float, mixed: bool) -> Step:
        """An anomaly detector's answer: score the observation, flag it, then learn it.

        A detector that raises in `score_one` dead-letters the observation unchanged; one that
        raises in `learn_one` still answers, and the record also goes to the dead letters."""
        model = state.models[0]
        try:
            score = model.score_one(obs.x)
        except Exception as error:
            return Step("dead_lettered", error=self._model_error("score", 0, error))
        if state.timed is None:
            state.timed = obs.timed
        expired = 0 if mixed else self._tick(state, ts)
        flagged = self.threshold.flag(score, state.seen, state.n_learned)
        prediction = Prediction(
            key, obs.id, score, None, self.names[0], state.n_learned, ts,
            score=score, is_anomaly=flagged,
        )  # fmt: skip
        step = Step("predicted", prediction, expired=expired, warnings=self._warnings(mixed, obs.x))
        try:
            model.learn_one(obs.x)
        except Exception as error:
            step.error = self._model_error("learn", 0, error)
            return step
        state.n_learned += 1
        state.learned[obs.id] = ts
        _cap(state.learned, self.max_pending)
        step.learned = 1
        return step

    def label(self, state: KeyState, key: str, label: Label) -> Step:
        """Learn from the pending observation with this id (or the label's own `x`)."""
        if self.detector:
            raise Rejected(
                Reason.UNEXPECTED_LABEL,
                f"the model {self.names[0]} is an anomaly detector: it learns from observations"
                " alone, and this app uses no labels",
            )
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
            learned, error = self._learn(
                state, label.id, x, label.y, pending, pending.ts if pending else ts
            )
            if not learned:
                return Step("dead_lettered", error=error, warnings=warnings)
            step = Step("joined", learned=1, error=error, warnings=warnings)
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
    ) -> tuple[bool, Rejected | None]:
        """Teach every candidate; whether any learned, and the first error if one raised.

        A candidate that raises is left as it was and misses this label; the others learn it,
        and the record also goes to the dead letters with the error. When the label shows a
        drift and the key resets on drift, its fresh models learn the label too.
        """
        errors = self._teach(state, x, y)
        if len(errors) == len(state.models):
            return False, errors[0]
        state.n_learned += 1
        state.learned[event_id] = ts
        _cap(state.learned, self.max_pending)
        if pending is not None:
            if _scorable(pending.y_pred):
                state.metric.update(y, pending.y_pred)
            if self._drifted(state, y, pending.y_pred, ts) and self.drift.resets:
                self._reset(state)  # the old models' predictions no longer score anyone
                errors = self._teach(state, x, y)
            else:
                for score, y_pred in zip(state.scores, pending.candidates or (), strict=False):
                    if _scorable(y_pred):
                        score.update(y, y_pred)
                self._elect(state)
        return True, (errors[0] if errors else None)

    def _teach(self, state: KeyState, x: dict, y: Any) -> list[Rejected]:
        """Teach every candidate one example; the errors of those that raised."""
        errors = []
        for index, model in enumerate(state.models):
            try:
                state.models[index] = learn(model, x, y)
            except Exception as error:
                errors.append(self._model_error("learn", index, error))
        return errors

    def _drifted(self, state: KeyState, y: Any, y_pred: Any, ts: float) -> bool:
        """Feed the served prediction's error to the key's detector; on a drift, note it."""
        if state.drift_detector is None or not _scorable(y_pred):
            return False
        error = float(y != y_pred) if self.classifier else abs(y - y_pred)
        if not self.drift.drifted(state.drift_detector, error):
            return False
        count = state.drift["count"] + 1 if state.drift else 1
        state.drift = {"count": count, "ts": ts, "n_learned": state.n_learned}
        return True

    def _reset(self, state: KeyState) -> None:
        """Fresh models, candidate scores and detector, as for a new key; the key's own metric,
        counts and pending entries stay. The first listed candidate serves again."""
        fresh = self.new_state()
        state.models, state.scores = fresh.models, fresh.scores
        state.drift_detector = fresh.drift_detector
        state.leader, state.switched_at = 0, state.n_learned

    def _elect(self, state: KeyState) -> None:
        """Make the best-scoring candidate the key's leader, if the selection lets it change."""
        if len(state.scores) < 2 or state.n_learned - state.switched_at < self.selection.min_labels:
            return
        values = [score.get() for score in state.scores]
        pick = max if state.metric.bigger_is_better else min
        best = pick(range(len(values)), key=values.__getitem__)  # the first of equals: ties
        if best != state.leader:
            state.leader, state.switched_at = best, state.n_learned

    def _model_error(self, action: str, index: int, error: Exception) -> Rejected:
        who = "the model" if len(self.names) == 1 else f"the model {self.names[index]}"
        return Rejected(Reason.MODEL_ERROR, f"{who} raised in {action}: {error!r:.200}")

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
        if not all(usable(x) for usable in self.checks):
            warnings += ("no_features",)
        return warnings


def _kind_of(prototypes: Sequence[Any]) -> str:
    """The kind shared by the candidates' models (see KINDS); a mix, or several detectors, is a
    `ModelError`: a detector has no labels to choose between candidates or to share with them."""
    kinds = {"anomaly detector" if is_detector(p) else KINDS[is_classifier(p)] for p in prototypes}
    if len(kinds) != 1:
        raise ModelError(
            "--model: candidates must be all regressors, all classifiers, or one anomaly"
            f" detector, not a mix ({', '.join(k for k in KINDS if k in kinds)})"
        )
    kind = kinds.pop()
    if kind == "anomaly detector" and len(prototypes) > 1:
        raise ModelError(
            "--model: one anomaly detector per app: without labels there is no metric to choose"
            " between candidates"
        )
    return kind


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


def _scorable(y_pred: Any) -> bool:
    """Whether a prediction can be scored: models answer None (or creme's `{}`) before learning."""
    return y_pred is not None and y_pred != {}


def _set_slots(instance: Any, values: dict) -> None:
    for name, value in values.items():
        object.__setattr__(instance, name, value)
