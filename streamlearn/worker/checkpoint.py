"""The checkpoint: what makes state and input offsets agree after any crash.

Between checkpoints the worker only changes states in memory and sends predictions without
waiting for them. A checkpoint starts with a cut (`Checkpoint.cut`, which waits for nothing):
the states changed so far as they are at that moment, the input offsets processed and the
outputs of those records, handed to the producer. The intake goes on at once: the states of
the cut are pickled in the background, or just before an event changes one
(`PartitionStates.get`). Then, in this order:

1. Send each state of the cut to its changelog partition, once, with the input offsets it
   covers in the record's `streamlearn-offsets` header.
2. Wait until every record sent before the cut, predictions and dead letters included, and
   those state records are acknowledged by the broker; if one failed, stop here: nothing is
   committed.
3. Commit the input offsets of the cut.
4. Write the same states, and the changelog offset they reach, to the local RocksDB in one
   atomic batch per partition.

One checkpoint runs at a time: the next cut waits until the last one is written. So the local
RocksDB is never ahead of the changelog nor of the committed offsets (a crash
before 4 leaves it at the last checkpoint, and Faust's recovery reads the changelog from the
offset it holds), and the committed offsets are never ahead of the state or of the outputs (a
crash before 3 re-reads every record since the last checkpoint and does it all again, outputs
included). A crash between 1 and 3 leaves changelog records beyond the commit: recovery skips
them by their header (store.py), so a partition rebuilt anywhere is exactly the last
checkpoint. Faust's own flush before a commit waited for a quiet producer, not for delivery;
step 2 waits for the acknowledgements themselves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiokafka.errors import MessageSizeTooLargeError
from rocksdict import WriteBatch

from streamlearn.errors import StateTooLarge
from streamlearn.learning.state import PartitionStates, Written
from streamlearn.worker.outbox import Outbox
from streamlearn.worker.states import States

log = logging.getLogger("streamlearn")
OFFSETS_HEADER = "streamlearn-offsets"

Commit = Callable[[Mapping], Awaitable[bool]]


def offsets_header(state: Written) -> bytes:
    """The input offsets a written state covers: the last observation and label offsets applied.

    >>> offsets_header(Written(b"", 41, -1))
    b'41,-1'
    """
    return b"%d,%d" % (state.observations, state.labels)


PICKLE_CHUNK = 100  # states pickled between two turns of the intake (~5 ms of work)


@dataclass
class Cut:
    """What one checkpoint covers, fixed the moment it starts."""

    partitions: dict[int, PartitionStates]  # each holds its cut states (`PartitionStates.cut`)
    processed: dict  # input TP -> the next offset to read (what to commit)
    outputs: list[asyncio.Future]  # deliveries of the outputs sent before the cut


class Checkpoint:
    """Tracks what is processed since the last checkpoint and makes it durable (see above).

    It is due every `interval` seconds or `records` records, whichever comes first. `cut` fixes
    what it covers at once; `write` then does steps 1-4 while the intake goes on.
    """

    def __init__(
        self, states: States, outbox: Outbox, changelog: Outbox, interval: float, records: int
    ) -> None:
        self.states = states
        self.outbox = outbox  # the outputs, whose deliveries a commit must wait for
        self.changelog = changelog  # the state records, on the same producer
        self.interval = interval
        self.records = records
        self.processed: dict = {}  # input TP -> the next offset to read (what to commit)
        self.count = 0
        self.started = time.monotonic()

    def record(self, tp: object, offset: int) -> None:
        """Note that the input record at `offset` of `tp` has been processed."""
        self.processed[tp] = offset + 1
        self.count += 1

    def pending(self) -> bool:
        """Whether anything was processed or sent since the last cut."""
        return bool(self.count or self.outbox.sent or self.outbox.open)

    def due(self) -> bool:
        if not self.pending():
            return False
        return self.count >= self.records or time.monotonic() - self.started >= self.interval

    def forget(self) -> None:
        """Drop what is not yet checkpointed (partitions moved, or a checkpoint failed)."""
        self.processed.clear()
        self.outbox.forget()
        self.changelog.forget()
        self.count = 0
        self.started = time.monotonic()

    async def cut(self) -> Cut:
        """Fix what the next checkpoint covers: the states changed so far, as they are now,
        the offsets processed and the outputs of those records, handed to the producer here
        (a commit before they are delivered would lose them in a crash). Nothing waits."""
        await self.outbox.flush()
        partitions = dict(self.states.partitions)
        for states in partitions.values():
            states.take_cut()
        cut = Cut(partitions, self.processed, self.outbox.sent)
        self.processed, self.outbox.sent = {}, []
        self.count = 0
        self.started = time.monotonic()
        return cut

    async def write(
        self, cut: Cut, changelog: str, commit: Commit, db_for: Callable[[int], object], key: bytes
    ) -> bool:
        """Steps 1-4 above for `cut`; False when the commit was refused (a rebalance began).

        Raises `StateTooLarge` when the broker refuses a record for its size: the largest
        state is named, as predictions and dead letters are small."""
        for states in cut.partitions.values():
            while states.pickle_cut(PICKLE_CHUNK):
                await asyncio.sleep(0)  # the intake goes on between chunks
        largest = (b"", 0)
        for partition, states in cut.partitions.items():
            for state_key, state in states.cut.items():
                assert state is not None
                largest = max(largest, (state_key, len(state.value)), key=lambda item: item[1])
                headers = [(OFFSETS_HEADER, offsets_header(state))]
                self.changelog.add(changelog, partition, state_key, state.value, None, headers)
        await self.changelog.flush()
        try:
            # Shielded: a cancelled gather cancels what it waits for, and these deliveries are
            # still needed by a later checkpoint if this task is cancelled (a worker stopping).
            await asyncio.shield(asyncio.gather(*cut.outputs, *self.changelog.sent))
        except MessageSizeTooLargeError as error:
            raise StateTooLarge(*largest, changelog) from error
        if cut.processed and not await commit(cut.processed):
            return False
        for partition, states in cut.partitions.items():
            if states.cut:
                batch = WriteBatch(raw_mode=True)
                for state_key, state in states.cut.items():
                    assert state is not None
                    batch.put(state_key, state.value)
                reached = self.changelog.reached(changelog, partition)
                batch.put(key, str(reached).encode())
                db_for(partition).write(batch)
            states.cut_written()
        self.changelog.forget()
        return True
