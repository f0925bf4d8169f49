"""One log line per rebalance: which partitions this worker gained and lost, and how long it
took until its tables were recovered and processing resumed.

Faust itself logs recovery progress (remaining changelog records and an estimate) every 5 s
while a long recovery runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from aiokafka import TopicPartition

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
