"""What the worker does around a rebalance: log it in one line, put every source partition back
at its committed offset before Faust resumes it, and notice records skipped anyway.

Faust itself logs recovery progress (remaining changelog records and an estimate) every 5 s
while a long recovery runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from faust.types import TP, ConsumerT

log = logging.getLogger("streamlearn")


class RebalanceLog:
    """Tracks this worker's partitions of `topic` across rebalances."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.owned: set[int] = set()
        self.started: float | None = None  # set while partitions move
        self.pending_line = ""
        self.completed_count = 0  # rebalances this worker has come through

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
        self.completed_count += 1


async def resume_from_committed(consumer: ConsumerT, topics: Collection[str]) -> dict[TP, int]:
    """Seek every assigned partition of `topics` to its committed offset, or to its log start if
    it has none, before Faust resumes fetching them.

    Faust's own seek after a rebalance leaves two ways to skip records nobody processed:
    - aiokafka's `seek_to_committed` skips a partition with no commit (or a commit at 0): its
      fetcher carries on after the records Faust fetched and then dropped from its buffers;
    - Faust resumes the partitions *before* it seeks them. In between, its fetcher delivers from
      wherever aiokafka's position was, which is past the commit when the last commit failed in
      the rebalance; that raises Faust's read filter (`Consumer._read_offset`), which then drops
      the records its seek fetches again.
    This runs on `on_rebalance_complete`, while the partitions are still paused; Faust's
    `seek_wait` moves aiokafka's position and resets the read filter together. Records this
    worker did process come again and are recognised by the offsets kept in each key's state.

    Returns the offset where each partition of `topics` resumes.
    """
    if not consumer.assignment():  # an idle worker (more workers than partitions)
        return {}
    committed = await consumer.seek_to_committed()
    inputs = {tp: offset for tp, offset in committed.items() if tp.topic in topics}
    uncommitted = [tp for tp, offset in inputs.items() if not offset]
    starts = await consumer.earliest_offsets(*uncommitted) if uncommitted else {}
    resume = {tp: offset or starts.get(tp) or 0 for tp, offset in inputs.items()}
    await consumer.seek_wait(resume)
    log.info(
        "resuming %d partitions at their committed offsets, %d with none at their log start",
        len(resume) - len(uncommitted),
        len(uncommitted),
    )
    return resume


async def committed_inputs(
    consumer: ConsumerT, topics: Any, partitions: Collection[int]
) -> dict[int, tuple[int, int]]:
    """`partition -> (observations, labels)` committed offsets (0 where none), read from the
    group coordinator without moving any position, for the recovery's skip rule (store.py)."""
    thread = consumer._thread  # Faust runs aiokafka in its own thread: ask it there
    client = thread._ensure_consumer()

    async def fetch() -> dict[int, tuple[int, int]]:
        committed = {}
        for partition in partitions:
            observations = await client.committed(TopicPartition(topics.observations, partition))
            labels = await client.committed(TopicPartition(topics.labels, partition))
            committed[partition] = (observations or 0, labels or 0)
        return committed

    return await thread.call_thread(fetch)


async def commit_inputs(consumer: ConsumerT, offsets: Mapping[TP, int]) -> bool:
    """Commit exactly `offsets`, or nothing: False when the group refuses (a rebalance began,
    or a partition is no longer this worker's). Faust's own commit quietly leaves out the
    partitions it no longer owns and still reports success; the checkpoint must know."""
    thread = consumer._thread
    client = thread._ensure_consumer()
    request = {
        TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, "")
        for tp, offset in offsets.items()
    }

    async def commit() -> bool:
        try:
            await client.commit(request)
        except KafkaError as error:
            log.warning("commit refused (%r): the records behind it are read again", error)
            return False
        return True

    return await thread.call_thread(commit)


class Holes:
    """Notices records a partition's consumer skipped: an offset beyond the next one expected.

    Assumes input topics without transactional producers (streamlearn's own use none): their
    offsets then have no gaps, and a jump past the next expected offset means records this
    worker never saw. Records at or before it are normal redeliveries.

        >>> holes = Holes()
        >>> holes.reset({"p": 5})
        >>> holes.seen("p", 5), holes.seen("p", 5), holes.seen("p", 8)
        (None, None, (6, 7))
    """

    def __init__(self) -> None:
        self.expected: dict = {}

    def reset(self, resume: Mapping) -> None:
        """Start over from the offset where each partition resumes."""
        self.expected = dict(resume)

    def seen(self, tp: object, offset: int) -> tuple[int, int] | None:
        """Record a delivered offset; the first and last offsets skipped before it, if any."""
        expected = self.expected.get(tp, offset)  # a partition unknown at the reset: from here
        self.expected[tp] = max(expected, offset + 1)
        if offset > expected:
            return expected, offset - 1
        return None
