"""One order for a partition's observations and labels, whoever reads them and whenever.

Kafka orders records within a topic partition, not across the observations and labels topics.
Left to fetch timing, a worker draining a backlog, one re-reading after a crash, and replay
would each interleave a key's observations and labels differently, and a re-sent prediction
could differ from the first (a label learned before it one time, after it the next). So the
records of one partition of both topics are merged by record timestamp (then observations
first, then offset), as Kafka Streams merges a task's partitions. A head record waits until the
other topic's next record is known, or until that topic is caught up (`Other.CAUGHT_UP`, which
the caller decides: fetched to its end by a fetch sent a grace period after the head record's
time, by when a record written before it and still on its way has reached the broker).

How long a head record may wait depends on why it waits (`Other`):
- the other topic holds records not fetched yet (just assigned, sought back, or its broker
  failing over): they are in the log, a re-read would see them, so it waits for them, for
  `stalled_wait` at most; then that topic counts as stalled (`stalled`, which the caller logs)
  and is not waited for until it is fetched to its end again;
- the other topic is fetched to its end, but by a fetch too early to be sure: at most
  `max_wait` (records stamped ahead of the worker's clock would wait for it).

    >>> merge = Merge("obs", "labels", max_wait=1.0)
    >>> merge.add("labels", [("l1", 20), ("l2", 40)])
    >>> merge.add("obs", [("o1", 10), ("o2", 30)])
    >>> where = lambda topic, since: Other.CAUGHT_UP if since < 35 else Other.AT_END
    >>> [r for r, _ in merge.ready(where, now=0.0)]
    ['o1', 'l1', 'o2']
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

STALLED_WAIT = 30.0  # seconds a record waits for records the other topic holds but never sends


class Other(enum.Enum):
    """Where the other topic's partition stands, as far as a waiting head record goes."""

    CAUGHT_UP = "nothing written before the head record can still come"
    AT_END = "fetched to its end, by a fetch too early to be sure"
    BEHIND = "holds records not fetched yet"


class Merge:
    """Merges two topics' records of one partition; records are `(record, timestamp)` pairs."""

    def __init__(
        self, first: str, second: str, max_wait: float, stalled_wait: float = STALLED_WAIT
    ) -> None:
        self.first, self.second = first, second  # at equal timestamps, `first` goes first
        self.queues: dict[str, deque[tuple[Any, float]]] = {first: deque(), second: deque()}
        self.max_wait = max_wait
        self.stalled_wait = stalled_wait
        self.waiting_since: float | None = None
        self.stalled = False  # the other topic stalled: its records are not waited for

    def add(self, topic: str, records: Iterable[tuple[Any, float]]) -> None:
        self.queues[topic].extend(records)

    def clear(self) -> None:
        """Forget what is buffered (the partition was sought back, or it moved away)."""
        for queue in self.queues.values():
            queue.clear()
        self.waiting_since = None

    def __len__(self) -> int:
        return sum(len(queue) for queue in self.queues.values())

    def ready(
        self, where: Callable[[str, float], Other], now: float
    ) -> Iterator[tuple[Any, float]]:
        """The records whose turn has come, in merged order; the rest stays buffered.

        `where(topic, timestamp)` says where `topic` stands for a head record of that time
        (`Other`); `now` is a monotonic time, for the waits.
        """
        first, second = self.queues[self.first], self.queues[self.second]
        while first or second:
            if first and second:
                queue = first if first[0][1] <= second[0][1] else second
            else:
                queue, other = (first, self.second) if first else (second, self.first)
                stands = where(other, queue[0][1])
                if stands is not Other.BEHIND:
                    self.stalled = False
                if stands is not Other.CAUGHT_UP and not self.stalled:
                    if self.waiting_since is None:
                        self.waiting_since = now
                    limit = self.stalled_wait if stands is Other.BEHIND else self.max_wait
                    if now - self.waiting_since < limit:
                        return
                    self.stalled = stands is Other.BEHIND  # until it moves again
            self.waiting_since = None
            yield queue.popleft()
