"""The checkpoint: what makes state and input offsets agree after any crash.

Between checkpoints the worker only changes states in memory and sends predictions without
waiting for them. A checkpoint then makes all of that durable, in this order:

1. Send each changed key's state to its changelog partition, once, with the input offsets it
   covers in the record's `streamlearn-offsets` header.
2. Wait until every record sent since the last checkpoint, predictions and dead letters
   included, is acknowledged by the broker; if one failed, stop here: nothing is committed.
3. Commit the input offsets of everything processed.
4. Write the same states, and the changelog offset they reach, to the local RocksDB in one
   atomic batch per partition.

So the local RocksDB is never ahead of the changelog nor of the committed offsets (a crash
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

from aiokafka.errors import MessageSizeTooLargeError
from rocksdict import WriteBatch

from streamlearn.errors import StateTooLarge
from streamlearn.learning.core import KeyState
from streamlearn.learning.state import dumps_state
from streamlearn.worker.outbox import Outbox
from streamlearn.worker.states import States

log = logging.getLogger("streamlearn")
OFFSETS_HEADER = "streamlearn-offsets"

Commit = Callable[[Mapping], Awaitable[bool]]


def offsets_header(state: KeyState) -> bytes:
    """The input offsets a state covers: the last observation and label offsets applied.

    >>> from streamlearn.learning.core import KeyState
    >>> offsets_header(KeyState(models=[], metric=None, offsets={"o": 41}))
    b'41,-1'
    """
    return b"%d,%d" % (state.offsets.get("o", -1), state.offsets.get("l", -1))


class Checkpoint:
    """Tracks what is processed since the last checkpoint and makes it durable (see above).

    It is due every `interval` seconds or `records` records, whichever comes first.
    """

    def __init__(self, states: States, outbox: Outbox, interval: float, records: int) -> None:
        self.states = states
        self.outbox = outbox  # holds the deliveries to confirm before committing
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
        """Whether anything was processed or sent since the last checkpoint."""
        return bool(self.count or self.outbox.sent or self.outbox.open)

    def due(self) -> bool:
        if not self.pending():
            return False
        return self.count >= self.records or time.monotonic() - self.started >= self.interval

    def forget(self) -> None:
        """Drop what is not yet checkpointed (partitions moved, or a commit failed)."""
        self.processed.clear()
        self.outbox.forget()
        self.count = 0
        self.started = time.monotonic()

    async def commit(
        self, changelog: str, commit: Commit, db_for: Callable[[int], object], key: bytes
    ) -> bool:
        """Steps 1-4 above; False when the commit was refused (a rebalance began).

        Raises `StateTooLarge` when the broker refuses a record for its size: the largest
        state is named, as predictions and dead letters are small."""
        written: dict[int, list[tuple[bytes, bytes]]] = {}
        largest = (b"", 0)
        for partition, states in self.states.partitions.items():
            for state_key, state in states.changed():
                value = dumps_state(state)
                written.setdefault(partition, []).append((state_key, value))
                largest = max(largest, (state_key, len(value)), key=lambda item: item[1])
                headers = [(OFFSETS_HEADER, offsets_header(state))]
                self.outbox.add(changelog, partition, state_key, value, None, headers)
        await self.outbox.flush()
        try:
            # Shielded: a cancelled gather cancels what it waits for, and these deliveries are
            # still needed by the next checkpoint if this task is cancelled (a worker stopping).
            await asyncio.shield(asyncio.gather(*self.outbox.sent))
        except MessageSizeTooLargeError as error:
            raise StateTooLarge(*largest, changelog) from error
        processed = dict(self.processed)
        if processed and not await commit(processed):
            return False
        for partition, values in written.items():
            batch = WriteBatch(raw_mode=True)
            for state_key, value in values:
                batch.put(state_key, value)
            batch.put(key, str(self.outbox.reached(changelog, partition)).encode())
            db_for(partition).write(batch)
        for states in self.states.partitions.values():
            states.checkpointed()
        self.forget()
        return True
