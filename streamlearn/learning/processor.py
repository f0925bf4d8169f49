"""One consumed record in, the records to produce out: routing, parsing, dedup, the core.

This is everything the Faust agent does, minus the I/O, so it is tested without Kafka.
Every record ends in exactly one counted outcome (see `Counters`).
"""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass

import orjson

from streamlearn.kafka.partitioner import partition_for
from streamlearn.learning.core import WARNINGS, KeyState, Learner, Step
from streamlearn.learning.events import (
    EventId,
    Label,
    Observation,
    Reason,
    Rejected,
    parse_key,
    parse_label,
    parse_observation,
)
from streamlearn.learning.state import StateStore, loads_state
from streamlearn.settings import Topics
from streamlearn.snapshot import is_sealed, unseal

OUTCOMES = (
    "predicted",  # an observation answered
    "joined",  # a label learned with its observation's features (or its own x)
    "waiting",  # a label held until its observation arrives
    "duplicate",  # an id seen before: counted, not learned again
    "redelivered",  # a record this key's state already holds (at-least-once after a crash)
    "rerouted",  # a record on the wrong partition for its key, sent on to the right one
    "loaded",  # a sealed state (`streamlearn load`) that became its key's state
    "dead_lettered",  # a record that cannot be used: written to the dead-letter topic
)
DEAD_LETTER_VALUE_LIMIT = 64 * 1024  # longer originals stay in their topic, referenced by offset


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed Kafka record, reduced to what processing needs."""

    topic: str
    partition: int
    offset: int
    timestamp: float  # seconds; the event time when the event has no `ts`
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Output:
    """A record to produce; `partition` None lets the key's hash decide."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None
    timestamp: float | None = None


class Counters:
    """Per-worker counts: `consumed` equals the sum of the outcomes at every moment."""

    def __init__(self) -> None:
        self.consumed = 0
        self.outcomes: Counter[str] = Counter(dict.fromkeys(OUTCOMES, 0))
        self.learned = 0  # learn calls: joined labels plus early labels joined later
        self.expired = 0  # pending observations and early labels dropped after the horizon
        self.skipped = 0  # records the consumer never delivered (counted by the agent)
        self.warnings: Counter[str] = Counter(dict.fromkeys(WARNINGS, 0))  # see core.WARNINGS
        self.dead_letters: Counter[str] = Counter()  # dead letters by `Reason` (a bounded set)
        self.examples: dict[str, str] = {}  # a recent record behind each warning and duplicate

    def as_dict(self) -> dict[str, int]:
        return {
            "consumed": self.consumed,
            **self.outcomes,
            "learned": self.learned,
            "expired": self.expired,
            "skipped": self.skipped,
            **self.warnings,
        }


class Processor:
    """Applies records of the observations and labels topics to per-key state.

    `secret` opens sealed states sent by `streamlearn load` (streamlearn/snapshot.py); without
    one, such records are dead-lettered unopened.
    """

    def __init__(
        self,
        learner: Learner,
        topics: Topics,
        partitions: int,
        max_event_bytes: int,
        secret: bytes | None = None,
    ) -> None:
        self.learner = learner
        self.topics = topics
        self.partitions = partitions
        self.max_event_bytes = max_event_bytes
        self.secret = secret
        self.counters = Counters()

    def process(self, record: Record, store: StateStore) -> list[Output]:
        self.counters.consumed += 1
        try:
            key = parse_key(record.key)
        except Rejected as error:
            return self._dead_letter(record, error)
        home = partition_for(record.key, self.partitions)
        if home != record.partition:
            # A producer with another partitioner (librdkafka's default) put it here; its
            # state lives on `home`, so it must be processed there, not joined here.
            self.counters.outcomes["rerouted"] += 1
            return [Output(record.topic, record.key, record.value, home, record.timestamp)]
        is_observation = record.topic == self.topics.observations
        if not is_observation and is_sealed(record.value):
            return self._load(record, store)
        try:
            event = (parse_observation if is_observation else parse_label)(
                record.value, record.timestamp, self.max_event_bytes
            )
        except Rejected as error:
            return self._dead_letter(record, error)
        source = "o" if is_observation else "l"
        state = store.get(record.key)
        if state is None:
            state = self.learner.new_state()
        elif state.applied(source, record.offset):
            return self._redelivered(key, event.id, state, is_observation)
        try:
            if is_observation:
                step = self.learner.observe(state, key, event)
            else:
                step = self.learner.label(state, key, event)
        except Rejected as error:  # raised before the state changed
            return self._dead_letter(record, error)
        state.mark_applied(source, record.offset)
        store.put(record.key, state)
        if step.outcome == "duplicate":
            self.counters.examples["duplicate"] = f"key {key!r}, id {event.id!r}"
        for warning in step.warnings:
            self.counters.warnings[warning] += 1
            self.counters.examples[warning] = _example(key, event)
        return self._emit(record, step)

    def _emit(self, record: Record, step: Step) -> list[Output]:
        self.counters.outcomes[step.outcome] += 1
        self.counters.learned += step.learned
        self.counters.expired += step.expired
        outputs = []
        if step.prediction is not None:
            outputs.append(Output(self.topics.predictions, record.key, step.prediction.to_json()))
        if step.error is not None:
            outputs.append(self._dead_letter_output(record, step.error))
        return outputs

    def _load(self, record: Record, store: StateStore) -> list[Output]:
        """Make a sealed state its key's state, as one label would change it: in order with
        the key's events, checkpointed with them, and not applied twice on redelivery.

        The state keeps its models, metrics, pending entries and ids, so the key's next
        prediction is the one replay would make next; its input offsets are the app's.
        """
        try:
            opened = unseal(self.secret, record.key, record.value)
        except Rejected as error:
            return self._dead_letter(record, error)
        if opened.names != self.learner.names:
            error = Rejected(
                Reason.BAD_STATE,
                f"the state's candidates {', '.join(opened.names)} are not this app's"
                f" {', '.join(self.learner.names)}",
            )
            return self._dead_letter(record, error)
        current = store.get(record.key)
        if current is not None and current.applied("l", record.offset):
            self.counters.outcomes["redelivered"] += 1
            return []
        if current is not None and not opened.replace:
            error = Rejected(
                Reason.KEY_HAS_STATE,
                f"key {record.key.decode()!r} has learned {current.n_learned} labels here;"
                " `streamlearn load --replace` replaces such states",
            )
            return self._dead_letter(record, error)
        state = loads_state(opened.state)
        state.offsets = dict(current.offsets) if current is not None else {}
        state.mark_applied("l", record.offset)
        store.put(record.key, state)
        self.counters.outcomes["loaded"] += 1
        return []

    def _redelivered(
        self, key: str, event_id: EventId, state: KeyState, is_observation: bool
    ) -> list[Output]:
        """Skip a record already applied; re-send an observation's prediction if still pending,
        since the crash may have lost it (an identical duplicate on the predictions topic)."""
        self.counters.outcomes["redelivered"] += 1
        pending = state.pending.get(event_id) if is_observation else None
        if pending is None:
            return []
        prediction = pending.prediction(key, event_id, self.learner.names)
        return [Output(self.topics.predictions, key.encode(), prediction.to_json())]

    def _dead_letter(self, record: Record, error: Rejected) -> list[Output]:
        self.counters.outcomes["dead_lettered"] += 1
        return [self._dead_letter_output(record, error)]

    def _dead_letter_output(self, record: Record, error: Rejected) -> Output:
        self.counters.dead_letters[error.reason] += 1
        value = record.value or b""
        letter = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": None,
            "error": str(error),
            "value": None,
        }
        if record.key is not None:
            letter["key"], key_encoding = _text(record.key)
            if key_encoding != "utf-8":
                letter["key_encoding"] = key_encoding
        if record.value is not None:
            letter["value"], encoding = _text(value[:DEAD_LETTER_VALUE_LIMIT])
            if encoding != "utf-8":
                letter["encoding"] = encoding
        if len(value) > DEAD_LETTER_VALUE_LIMIT:
            letter["truncated"] = len(value)
        return Output(self.topics.dead_letters, record.key, orjson.dumps(letter))


def _example(key: str, event: Observation | Label) -> str:
    """A short description of the event behind a warning, for the log."""
    names = ", ".join(sorted(event.x)[:8]) if event.x is not None else "none"
    return f"key {key!r}, id {event.id!r}, features: {names}"


def _text(raw: bytes) -> tuple[str, str]:
    """The original bytes as text and its encoding: UTF-8 when it is, base64 otherwise."""
    try:
        return raw.decode(), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), "base64"
