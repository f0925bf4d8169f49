"""What the worker does around a rebalance: log it in one line, and rewind the partitions that
aiokafka would otherwise leave past records nobody processed.

Faust itself logs recovery progress (remaining changelog records and an estimate) every 5 s
while a long recovery runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable

from aiokafka import TopicPartition
from faust.types import TP, ConsumerT

log = logging.getLogger("streamlearn")


class RebalanceLog:
    """Tracks this worker's partitions of `topic` across rebalances."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.owned: set[int] = set()
        self.started: float | None = None
        self.pending_line = ""

    def revoked(self) -> None:
        if self.started is None:
            self.started = time.monotonic()

    def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        if self.started is None:
            self.started = time.monotonic()
        now = {tp.partition for tp in partitions if tp.topic == self.topic}
        gained, lost = sorted(now - self.owned), sorted(self.owned - now)
        self.owned = now
        self.pending_line = (
            f"rebalance: now {len(now)} partitions {sorted(now)}; gained {gained}, lost {lost}"
        )
        log.info("%s; recovering tables …", self.pending_line)

    def completed(self) -> None:
        seconds = time.monotonic() - self.started if self.started is not None else 0.0
        log.info("%s; tables recovered, processing resumed after %.2fs", self.pending_line, seconds)
        self.started = None


async def rewind_uncommitted(consumer: ConsumerT, topics: Collection[str]) -> list[TP]:
    """Seek every assigned partition of `topics` that has no committed offset to its start.

    After a rebalance Faust drops the records already fetched into the agent's buffer and seeks
    back to the committed offsets, but aiokafka's `seek_to_committed` skips a partition with no
    commit (or a commit at 0): its fetcher would carry on after the dropped records, which no
    worker would ever process. Records this worker did process are read again and recognised
    by the offsets kept in each key's state. Returns the partitions rewound.
    """
    if not consumer.assignment():  # an idle worker (more workers than partitions)
        return []
    committed = await consumer.seek_to_committed()
    rewound = [tp for tp, offset in committed.items() if tp.topic in topics and not offset]
    if rewound:
        await consumer.seek_wait(dict.fromkeys(rewound, 0))
        log.info("rewound %d partitions with no committed offset to their start", len(rewound))
    return rewound
