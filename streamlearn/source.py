"""Rows of a CSV or JSON Lines file (gzip too) turned into observation and label events.

`produce` sends these events to Kafka and `replay` feeds them to the learning core, so both see
the same events in the same order. Each row becomes an observation at once and a label later:
after `delay` more observations, or, with a time column, once event time has moved `delay`
seconds past the row, as in real life, where the truth comes later.

    >>> rows = [{"station": "s1", "t": 1, "bikes": 3}, {"station": "s1", "t": 2, "bikes": 4}]
    >>> for e in to_events(rows, Columns(key="station", target="bikes"), delay=1):
    ...     print(e.kind, e.key, e.value)
    observation s1 {'id': 0, 'x': {'station': 's1', 't': 1}}
    observation s1 {'id': 1, 'x': {'station': 's1', 't': 2}}
    label s1 {'id': 0, 'y': 3}
    label s1 {'id': 1, 'y': 4}
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streamlearn.errors import ConfigError
from streamlearn.learning.events import EventId, Rejected, parse_ts

_INT = re.compile(r"[+-]?\d+\Z")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\Z")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


@dataclass(frozen=True)
class Columns:
    """Which columns are the entity key, the target, the event id and the event time.

    The event id is the value of the `id` columns (joined with "/" when there are several), so
    it can be unique per key without editing the file, e.g. `id=("date",)`. Without id columns
    it is the time when there is a time column, else the row number. `x` is every column but
    the target and the id columns; the key and the time column always stay, since pipelines
    group by the key and read the time.

        >>> row = {"item": "A_1", "store": "CA_1", "date": "2016-01-02", "sales": 3}
        >>> columns = Columns("item", "sales", id=("store", "date"), time="date")
        >>> columns.event_id(row, 7), [name for name in row if columns.in_x(name)]
        ('CA_1/2016-01-02', ['item', 'date'])
        >>> Columns("item", "sales", time="date").event_id(row, 7)
        '2016-01-02'
    """

    key: str
    target: str | None  # None: observations only, for an anomaly detector
    id: tuple[str, ...] = ()
    time: str | None = None  # default: no `ts`, so Kafka's record time is the event time

    def required(self) -> list[str]:
        return [c for c in (self.key, self.target, *self.id, self.time) if c is not None]

    def event_id(self, row: dict, number: int) -> EventId | None:
        """The row's event id; None when an id column is empty."""
        names = self.id or ((self.time,) if self.time is not None else ())
        if not names:
            return number
        values = [row.get(name) for name in names]
        if any(value is None for value in values):
            return None
        single = values[0]
        if len(values) == 1 and isinstance(single, str | int) and not isinstance(single, bool):
            return single
        return "/".join(str(value) for value in values)

    def in_x(self, name: str) -> bool:
        """Whether column `name` is a feature."""
        if name in (self.key, self.time):
            return True
        return name != self.target and name not in self.id


@dataclass(frozen=True, slots=True)
class Event:
    """One event to send: `kind` is "observation" or "label"; `value` is the JSON object."""

    kind: str
    key: str
    value: dict


@dataclass
class RowReader:
    """Iterates the rows of a file; malformed rows are counted in `malformed`, not yielded."""

    path: Path
    malformed: list[str] = field(default_factory=list)
    columns: list[str] | None = None
    rows: int = 0  # data rows read so far, malformed ones too

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_file():
            raise ConfigError(f"no such file: {self.path}")
        name = self.path.name.removesuffix(".gz")
        if name.endswith(".csv"):
            self.format = "csv"
        elif name.endswith((".jsonl", ".ndjson", ".json")):
            self.format = "jsonl"
        else:
            raise ConfigError(f"{self.path}: expected a .csv or .jsonl file (optionally .gz)")

    def _open(self) -> io.TextIOBase:
        if self.path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(self.path), encoding="utf-8", newline="")
        return open(self.path, encoding="utf-8", newline="")

    def header(self) -> list[str]:
        """The column names: the CSV header, or the keys of the first JSON line."""
        with self._open() as stream:
            if self.format == "csv":
                return next(csv.reader(stream), [])
            for line in stream:
                if line.strip():
                    first = _loads_object(line)
                    return list(first) if first is not None else []
        return []

    def __iter__(self) -> Iterator[dict]:
        with self._open() as stream:
            if self.format == "csv":
                yield from self._csv_rows(stream)
            else:
                yield from self._jsonl_rows(stream)

    def _csv_rows(self, stream: io.TextIOBase) -> Iterator[dict]:
        reader = csv.DictReader(stream, restkey="\0extra")
        for row in reader:
            self.rows += 1
            if "\0extra" in row or None in row.values():
                self.malformed.append(f"line {reader.line_num}: wrong number of fields")
                continue
            yield {name: _cell(text) for name, text in row.items()}

    def _jsonl_rows(self, stream: io.TextIOBase) -> Iterator[dict]:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            self.rows += 1
            row = _loads_object(line)
            if row is None:
                self.malformed.append(f"line {number}: not a JSON object")
                continue
            yield row

    def summary(self) -> str | None:
        """One line on the malformed rows (those of the file and those `to_events` skipped)."""
        if not self.malformed:
            return None
        line = f"skipped {len(self.malformed)} of {self.rows} rows as malformed"
        if 2 * len(self.malformed) > self.rows:
            line += ", most of the file: are --key, --target, --id and --time right?"
        return f"{line} (first: {self.malformed[0]})"


def _loads_object(line: str) -> dict | None:
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return row if isinstance(row, dict) else None


def _cell(text: str) -> Any:
    """A CSV cell as a JSON scalar: integers and finite floats as numbers, empty as null."""
    if text == "":
        return None
    if _INT.match(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def check_columns(reader: RowReader, columns: Columns) -> None:
    """A one-line `ConfigError` if a named column is not in the file."""
    header = reader.header()
    missing = [c for c in columns.required() if c not in header]
    if missing:
        raise ConfigError(
            f"{reader.path} has no column {', '.join(map(repr, missing))}"
            f" (its columns: {', '.join(header[:20])})"
        )


def parse_delay(text: str, by_time: bool) -> float:
    """`--label-delay`: a count of events, or with `--time` a duration like 90s, 30m, 2h, 1d."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ConfigError(f"--label-delay {text!r}: expected a number or a duration like 2h")
    number, unit = float(match.group(1)), match.group(2)
    if not by_time:
        if unit is not None or not number.is_integer():
            raise ConfigError(
                f"--label-delay {text}: a duration needs --time naming the timestamp column"
            )
        return number
    return number * _UNITS[unit]


def to_events(
    rows: Iterable[dict], columns: Columns, delay: float = 0, malformed: list[str] | None = None
) -> Iterator[Event]:
    """Observations in row order, each label after `delay` (events, or seconds with a time column).

    With a time column, each key's labels are released by that key's own time, in order of due
    time: a file sorted by key then time gives every key the same sequence as one sorted by
    time, and one row with a wrong time holds back no label but its own. A count delay counts
    every row of the file. Rows whose key, target, id or time cannot be used are added to
    `malformed` and skipped.
    """
    held = _Held(per_key=columns.time is not None)
    labelled = columns.target is not None
    for number, row in enumerate(rows):
        key, y = row.get(columns.key), row.get(columns.target) if labelled else True
        if key is None or y is None:
            _note(malformed, f"row {number + 1}: empty {columns.key!r} or {columns.target!r}")
            continue
        key = str(key)
        event_id = columns.event_id(row, number)
        if event_id is None:
            _note(malformed, f"row {number + 1}: empty id column {', '.join(columns.id)}")
            continue
        observation: dict[str, Any] = {"id": event_id}
        label: dict[str, Any] = {"id": event_id, "y": y}
        if columns.time is not None:
            try:
                ts = parse_ts(row.get(columns.time), default_ts=math.nan)
            except Rejected:
                ts = math.nan
            if math.isnan(ts):
                _note(malformed, f"row {number + 1}: unreadable time {row.get(columns.time)!r}")
                continue
            observation["ts"] = label["ts"] = ts
            due, now = ts + delay, ts
        else:
            due, now = number + delay, number
        observation["x"] = {name: value for name, value in row.items() if columns.in_x(name)}
        yield from held.release(key, now, strictly_before=True)  # truths known before this row
        yield Event("observation", key, observation)
        if labelled:
            held.hold(key, due, Event("label", key, label))
        yield from held.release(key, now, strictly_before=False)
    yield from held.rest()


class _Held:
    """Labels waiting for their due time: one queue per key, or one for the file.

    Each queue is a heap on due time, so a label due early is never stuck behind one due late
    (a row with a typo'd year) that came before it in the file.
    """

    def __init__(self, per_key: bool) -> None:
        self.per_key = per_key
        self.queues: dict[str | None, list[tuple[float, int, Event]]] = {}
        self.count = 0  # a tie-break that keeps equal due times in file order

    def hold(self, key: str, due: float, event: Event) -> None:
        queue = self.queues.setdefault(key if self.per_key else None, [])
        heapq.heappush(queue, (due, self.count, event))
        self.count += 1

    def release(self, key: str, now: float, strictly_before: bool) -> Iterator[Event]:
        """The labels of `key`'s queue due before `now` (or at it, unless `strictly_before`)."""
        queue = self.queues.get(key if self.per_key else None)
        while queue and (queue[0][0] < now or (not strictly_before and queue[0][0] == now)):
            yield heapq.heappop(queue)[2]

    def rest(self) -> Iterator[Event]:
        """Every label still held, in order of due time, at the end of the file."""
        for _, _, event in heapq.merge(*self.queues.values()):
            yield event


def _note(malformed: list[str] | None, reason: str) -> None:
    if malformed is not None:
        malformed.append(reason)
