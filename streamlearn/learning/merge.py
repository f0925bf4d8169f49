"""One order for a partition's observations and labels, whoever reads them and whenever.

Kafka orders records within a topic partition, not across the observations and labels topics.
Left to fetch timing, a worker draining a backlog, one re-reading after a crash, and replay
would each interleave a key's observations and labels differently, and a re-sent prediction
could differ from the first (a label learned before it one time, after it the next). So the
records of one partition of both topics are merged by record timestamp (then observations
first, then offset), as Kafka Streams merges a task's partitions: a head record waits until the
other topic's next record is known, or that topic is caught up as of a fetch made after the head
record was written (nothing older can still come), or it has waited `max_wait` seconds.

    >>> merge = Merge("obs", "labels", max_wait=1.0)
    >>> merge.add("labels", [("l1", 20), ("l2", 40)])
    >>> merge.add("obs", [("o1", 10), ("o2", 30)])
    >>> [r for r, _ in merge.ready(caught_up=lambda topic, since: since < 35, now=0.0)]
    ['o1', 'l1', 'o2']
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any


class Merge:
    """Merges two topics' records of one partition; records are `(record, timestamp)` pairs."""

    def __init__(self, first: str, second: str, max_wait: float) -> None:
        self.first, self.second = first, second  # at equal timestamps, `first` goes first
        self.queues: dict[str, deque[tuple[Any, float]]] = {first: deque(), second: deque()}
        self.max_wait = max_wait
        self.waiting_since: float | None = None

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
        self, caught_up: Callable[[str, float], bool], now: float
    ) -> Iterator[tuple[Any, float]]:
        """The records whose turn has come, in merged order; the rest stays buffered.

        `caught_up(topic, timestamp)` says whether `topic` is known to hold nothing more, as of
        a fetch made after `timestamp`; `now` is a monotonic time, for `max_wait`.
        """
        first, second = self.queues[self.first], self.queues[self.second]
        while first or second:
            if first and second:
                queue = first if first[0][1] <= second[0][1] else second
            else:
                queue, other = (first, self.second) if first else (second, self.first)
                if not caught_up(other, queue[0][1]):
                    if self.waiting_since is None:
                        self.waiting_since = now
                    if now - self.waiting_since < self.max_wait:
                        return
            self.waiting_since = None
            yield queue.popleft()
