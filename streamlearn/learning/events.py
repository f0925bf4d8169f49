"""Observation and label events: decoded with orjson and validated as the contract says.

Every way an event can be wrong has a `Reason`, so a dead letter says exactly why.

    >>> parse_observation(b'{"id": 7, "x": {"t": 1.5, "diet": "a"}, "ts": 10}', default_ts=0.0)
    Observation(id=7, x={'t': 1.5, 'diet': 'a'}, ts=10.0, timed=True)
    >>> parse_label(b'{"id": 7, "y": 3}', default_ts=12.5)
    Label(id=7, y=3, ts=12.5, x=None, timed=False)
    >>> parse_label(b'{"id": 7}', default_ts=0.0)
    Traceback (most recent call last):
    ...
    streamlearn.learning.events.Rejected: bad-target: the label has no "y"
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

EventId = str | int
Features = dict[str, Any]
DEFAULT_MAX_EVENT_BYTES = 256 * 1024
# C0 controls, DEL and C1 controls: never in a text key, always in a binary one such as the
# 8 bytes of a Java long (valid UTF-8 when its bytes are small, so decoding alone lets it in).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Reason(StrEnum):
    """Why an event was rejected; the first word of a dead letter's `error`."""

    MISSING_KEY = "missing-key"
    BAD_KEY = "bad-key"
    TOO_LARGE = "too-large"
    NOT_JSON = "not-json"
    NOT_OBJECT = "not-object"
    BAD_ID = "bad-id"
    BAD_FEATURES = "bad-features"
    BAD_TARGET = "bad-target"
    BAD_TS = "bad-ts"
    MODEL_ERROR = "model-error"
    BAD_SIGNATURE = "bad-signature"  # a state to load whose seal does not hold (snapshot.py)
    BAD_STATE = "bad-state"  # a sealed state made with other candidates than the app's
    KEY_HAS_STATE = "key-has-state"  # a state to load for a key that has one, without --replace
    UNEXPECTED_LABEL = "unexpected-label"  # a label for an app whose model is an anomaly detector


class Rejected(ValueError):
    """An event that cannot be used; `str()` is `"<reason>: <detail>"`."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Observation:
    """Features of one entity at one moment, to be answered with a prediction."""

    id: EventId
    x: Features
    ts: float
    timed: bool = True  # False: `ts` is the record time, the event carried none


@dataclass(frozen=True, slots=True)
class Label:
    """The truth for an earlier observation; with `x`, a self-contained example to learn."""

    id: EventId
    y: Any
    ts: float
    x: Features | None = None
    timed: bool = True  # False: `ts` is the record time, the event carried none


def parse_key(raw: bytes | None) -> str:
    """The entity key of a record: required, UTF-8 text without control characters."""
    if not raw:
        raise Rejected(Reason.MISSING_KEY, "the record has no message key (the entity key)")
    try:
        key = raw.decode()
    except UnicodeDecodeError:
        raise Rejected(Reason.BAD_KEY, "the message key is not UTF-8") from None
    if CONTROL_CHARACTERS.search(key):
        raise Rejected(
            Reason.BAD_KEY,
            f"the message key {raw!r:.60} has control characters: keys must be text, and this"
            " looks like a binary key (a Java long or int, say)",
        )
    return key


def parse_observation(
    value: bytes | None, default_ts: float, max_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> Observation:
    """An `Observation` from a record value, or `Rejected` with the reason."""
    event = _decode(value, max_bytes)
    if "x" not in event:
        raise Rejected(Reason.BAD_FEATURES, 'the observation has no "x"')
    ts = event.get("ts")
    return Observation(
        _event_id(event), _features(event["x"]), parse_ts(ts, default_ts), ts is not None
    )


def parse_label(
    value: bytes | None, default_ts: float, max_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> Label:
    """A `Label` from a record value, or `Rejected` with the reason."""
    event = _decode(value, max_bytes)
    if "y" not in event:
        raise Rejected(Reason.BAD_TARGET, 'the label has no "y"')
    y = event["y"]
    if not _is_finite_scalar(y) or y is None:
        raise Rejected(Reason.BAD_TARGET, f'"y" must be a finite JSON scalar, not {y!r:.80}')
    x = _features(event["x"]) if event.get("x") is not None else None
    ts = event.get("ts")
    return Label(_event_id(event), y, parse_ts(ts, default_ts), x, ts is not None)


def parse_query(value: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Features:
    """The features of a `{"x": {...}}` request to predict (the web's `/keys/<key>/predict`),
    checked as an observation's are, or `Rejected` with the reason."""
    event = _decode(value, max_bytes)
    if "x" not in event:
        raise Rejected(Reason.BAD_FEATURES, 'the request has no "x"')
    return _features(event["x"])


def check_target(y: Any, classifier: bool) -> None:
    """Raise `Rejected` unless `y` suits the model: a number for a regressor, a class otherwise."""
    if classifier:
        if not isinstance(y, str | int | bool):
            raise Rejected(Reason.BAD_TARGET, f"a classifier's target must be a class, not {y!r}")
    elif isinstance(y, bool) or not isinstance(y, int | float):
        raise Rejected(Reason.BAD_TARGET, f"a regressor's target must be a number, not {y!r:.80}")


def _decode(value: bytes | None, max_bytes: int) -> dict:
    if value is None:
        raise Rejected(Reason.NOT_OBJECT, "the record has no value")
    if len(value) > max_bytes:
        raise Rejected(Reason.TOO_LARGE, f"the value has {len(value)} bytes, over {max_bytes}")
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise Rejected(Reason.NOT_JSON, f"the value is not JSON ({error})") from None
    if not isinstance(event, dict):
        raise Rejected(Reason.NOT_OBJECT, f"the value is JSON but not an object: {value!r:.60}")
    return event


def _event_id(event: dict) -> EventId:
    if "id" not in event:
        raise Rejected(Reason.BAD_ID, 'the event has no "id"')
    event_id = event["id"]
    if isinstance(event_id, bool) or not isinstance(event_id, str | int):
        raise Rejected(Reason.BAD_ID, f'"id" must be a string or an integer, not {event_id!r:.60}')
    return event_id


def _features(x: Any) -> Features:
    if not isinstance(x, dict):
        raise Rejected(Reason.BAD_FEATURES, f'"x" must be an object, not {type(x).__name__}')
    for name, value in x.items():
        if not _is_finite_scalar(value):
            raise Rejected(
                Reason.BAD_FEATURES, f"feature {name!r} must be a finite JSON scalar: {value!r:.60}"
            )
    return x


def _is_finite_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


def parse_ts(ts: Any, default_ts: float) -> float:
    """Epoch seconds from a number or an ISO-8601 string (naive times are UTC); None: default."""
    if ts is None:
        return default_ts
    if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts):
        return float(ts)
    if isinstance(ts, str):
        try:
            moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    raise Rejected(Reason.BAD_TS, f'"ts" must be epoch seconds or ISO-8601, not {ts!r:.60}')
