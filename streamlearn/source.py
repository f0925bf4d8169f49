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
import io
import math
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streamlearn.errors import ConfigError
from streamlearn.events import Rejected, parse_ts

_INT = re.compile(r"[+-]?\d+\Z")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\Z")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


@dataclass(frozen=True)
class Columns:
    """Which columns are the entity key, the target, the event id and the event time."""

    key: str
    target: str
    id: str | None = None  # default: the row number
    time: str | None = None  # default: no `ts`, so Kafka's record time is the event time

    def required(self) -> list[str]:
        return [c for c in (self.key, self.target, self.id, self.time) if c is not None]


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
            if "\0extra" in row or None in row.values():
                self.malformed.append(f"line {reader.line_num}: wrong number of fields")
                continue
            yield {name: _cell(text) for name, text in row.items()}

    def _jsonl_rows(self, stream: io.TextIOBase) -> Iterator[dict]:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            row = _loads_object(line)
            if row is None:
                self.malformed.append(f"line {number}: not a JSON object")
                continue
            yield row


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

    Rows whose key, target or time cannot be used are added to `malformed` and skipped.
    """
    held: deque[tuple[float, Event]] = deque()
    skip = {columns.target, columns.id}
    for number, row in enumerate(rows):
        key, y = row.get(columns.key), row.get(columns.target)
        if key is None or y is None:
            _note(malformed, f"row {number + 1}: empty {columns.key!r} or {columns.target!r}")
            continue
        event_id = row.get(columns.id, number) if columns.id else number
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
        observation["x"] = {name: value for name, value in row.items() if name not in skip}
        while held and held[0][0] < now:  # truths that came strictly before this row
            yield held.popleft()[1]
        yield Event("observation", str(key), observation)
        held.append((due, Event("label", str(key), label)))
        while held and held[0][0] <= now:
            yield held.popleft()[1]
    for _, event in held:
        yield event


def _note(malformed: list[str] | None, reason: str) -> None:
    if malformed is not None:
        malformed.append(reason)
