"""The state table's RocksDB store, which rebuilds a partition as of its last checkpoint.

A checkpoint sends states to the changelog before it commits the input offsets they cover
(checkpoint.py). A crash in between leaves changelog records of a checkpoint that never
committed: applied, they would put a state ahead of the committed offsets, and the records the
worker then reads again would find their effects already there (a prediction not re-sent, or
re-sent with other numbers). So recovery skips a changelog record whose header says it covers
an input offset at or past the committed one; the key keeps its value from the checkpoint
before, which the records read again rebuild.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import faust
from faust.stores import rocksdb
from faust.types import TP, EventT
from rocksdict import WriteBatch

from streamlearn.worker.checkpoint import OFFSETS_HEADER

log = logging.getLogger("streamlearn")


def covered(headers: Any, committed: tuple[int, int]) -> bool:
    """Whether a changelog record's input offsets are all below the committed offsets.

    `committed` is `(observations, labels)`: the next offsets to read. A record without the
    header (written before checkpoints existed) is kept.

        >>> covered([("streamlearn-offsets", b"9,4")], (10, 5)), covered({}, (0, 0))
        (True, True)
        >>> covered([("streamlearn-offsets", b"10,4")], (10, 5))
        False
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for name, value in pairs:
        if name == OFFSETS_HEADER:
            observation, label = (int(n) for n in value.split(b","))
            return observation < committed[0] and label < committed[1]
    return True


Committed = Callable[[set[int]], Awaitable[Mapping[int, tuple[int, int]]]]


class Store(rocksdb.Store):
    """Faust's RocksDB store; recovery skips changelog records no commit covers (see above).

    At each rebalance, before Faust recovers anything, it asks `committed_offsets` (set by the
    app) for the committed input offsets of the partitions it now serves actively. Standby
    partitions keep every record: their commits move while they are read.
    """

    committed_offsets: Committed | None = None
    committed: Mapping[int, tuple[int, int]] = {}

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0
    ) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        standbys = self.app.assignor.assigned_standbys()
        topics = self.table.changelog_topic.topics
        active = {tp.partition for tp in assigned if tp.topic in topics and tp not in standbys}
        if self.committed_offsets is not None:
            self.committed = await self.committed_offsets(active)

    def apply_changelog_batch(
        self,
        batch: Iterable[EventT],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        committed = self.committed
        batches: dict[int, WriteBatch] = defaultdict(lambda: WriteBatch(raw_mode=True))
        reached: dict[TP, int] = {}
        skipped = 0
        for event in batch:
            message = event.message
            reached[message.tp] = max(message.offset, reached.get(message.tp, -1))
            covers = committed.get(message.partition)
            if covers is not None and not covered(message.headers, covers):
                skipped += 1
            elif message.value is None:
                batches[message.partition].delete(message.key)
            else:
                batches[message.partition].put(message.key, message.value)
        for partition, writes in batches.items():
            self._db_for_partition(partition).write(writes)
        for tp, offset in reached.items():
            self.set_persisted_offset(tp, offset)
        if skipped:
            log.info("recovery skipped %d changelog records of an uncommitted checkpoint", skipped)


class Table(faust.Table):
    """Faust's table, on the store above."""

    def _new_store_by_url(self, url: Any) -> Store:
        return Store(
            url,
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
        )
