"""The hot path: input records taken straight from the fetched batches, processed in bulk.

Faust hands every record to an agent through its conductor, a queue, a stream iterator, an
event object and an ack: about 140 µs per record before any work, and a full core at ~7,400
records/s. The transport (transport.py) gives the observations' and labels' records to
`Intake.take` instead, batch by batch as aiokafka fetched them. Per partition they are merged
into one deterministic order (streamlearn/learning/merge.py), applied to states that live in memory
(`PartitionStates`, streamlearn/learning/state.py) by the same `Processor` replay runs, and their
outputs are sent without waiting for each. The checkpoint (checkpoint.py) then makes
state and offsets durable together. Faust still runs the group, the assignor, the table and its
recovery, and the rebalance fixes (rebalance.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Mapping
from typing import Any

from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.types import TP

from streamlearn.errors import StateTooLarge, StreamlearnError
from streamlearn.kafka.outage import pace_metadata
from streamlearn.learning.merge import Merge, Other
from streamlearn.learning.processor import Processor, Record
from streamlearn.settings import Settings
from streamlearn.worker.checkpoint import Checkpoint, Cut
from streamlearn.worker.outbox import Outbox
from streamlearn.worker.rebalance import Holes, commit_inputs, resume_from_committed
from streamlearn.worker.states import States
from streamlearn.worker.transport import note_fetch_times

log = logging.getLogger("streamlearn")
LOOK_AGAIN = 0.05  # seconds: about one fetch (transport.py), after which a waiting record may go
FETCH_STALE_MS = 2000  # fetches come every 50 ms (transport.py); none for this long: failing


class Intake:
    """Processes the input records this worker fetches; owned by the app (`app.intake`)."""

    def __init__(self, app: Any, processor: Processor, settings: Settings) -> None:
        self.app = app
        self.processor = processor
        self.settings = settings
        self.observations = settings.topics.observations
        self.labels = settings.topics.labels
        self.states = States(self._load, settings.cache_size)
        self.outbox: Outbox | None = None  # made once the producer has started
        self.fetcher: Any = None  # aiokafka's fetcher, once the consumer has started
        self.fetch_sent_at: dict[TP, int] = {}  # when the fetches the merge relies on were sent
        self.checkpoint: Checkpoint | None = None
        self.writing: asyncio.Task | None = None  # the checkpoint being written, if one is
        self.merges: dict[int, Merge] = {}
        self.looking_again = False  # a run is due shortly for records waiting in a merge
        self.next_offset: dict[TP, int] = {}  # per input partition: the next offset to fetch
        self.holes = Holes()
        self.lock = asyncio.Lock()  # one batch or one checkpoint at a time
        self.rewind = False  # go back to the commits before processing more
        self.stopped = False  # after the last checkpoint: what still comes is left to be re-read
        self.fatal: StreamlearnError | None = None  # why the worker stops by itself, if it does
        self.table: Any = None  # the state table, set by the app

    def owns(self, tp: TP) -> bool:
        return tp.topic == self.observations or tp.topic == self.labels

    async def take(self, records: Mapping[TP, list]) -> None:
        """Buffer freshly fetched input records, then process what their turn has come for."""
        if self.stopped:
            return
        for tp, batch in records.items():
            fresh = self._fresh(tp, batch)
            if not fresh:
                continue
            merge = self.merges.get(tp.partition)
            if merge is None:
                max_wait = self.settings.merge_wait
                merge = self.merges[tp.partition] = Merge(self.observations, self.labels, max_wait)
            merge.add(tp.topic, ((record, record.timestamp) for record in fresh))
        await self.run()

    async def run(self) -> None:
        """Process the buffered records that are ready, and checkpoint when one is due."""
        if not self.app.consumer.flow_active:
            return  # a rebalance is under way: what is buffered waits, or is sought again
        async with self.lock:
            if self.checkpoint is None:
                await self._start()
            if self.writing is not None and self.writing.done():
                await self._written()  # if it failed, everything since the last one is read again
            if self.rewind:  # a checkpoint failed outside a rebalance
                inputs = (self.observations, self.labels)
                self.on_resumed(await resume_from_committed(self.app.consumer, inputs))
            now = time.monotonic()
            for partition, merge in self.merges.items():
                if merge:
                    stalled = merge.stalled
                    await self._process(partition, merge.ready(self._where(partition), now))
                    if merge.stalled != stalled:
                        self._note_stall(partition, merge)
            await self.outbox.flush()
            if self.checkpoint.due():
                await self._checkpoint()
            if any(self.merges.values()):
                self._look_again()

    def _look_again(self) -> None:
        """Records wait in a merge for a fetch that says their turn has come: look again after
        the next fetch, rather than at Faust's next poll (up to a second later when idle)."""
        if self.looking_again or self.stopped:
            return
        self.looking_again = True

        async def again() -> None:
            self.looking_again = False
            await self.run()

        def start() -> None:
            task = asyncio.ensure_future(again())
            task.add_done_callback(self._failed_again)

        asyncio.get_running_loop().call_later(LOOK_AGAIN, start)

    @staticmethod
    def _failed_again(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("processing waiting records failed: %r", task.exception())

    async def _start(self) -> None:
        """The outbox and checkpoint, on the producer Faust started; output partition counts."""
        producer = self.app.producer._ensure_producer()
        pace_metadata(producer.client)  # no metadata refresh loop while the broker is gone
        self.outbox = Outbox(producer)
        self.fetcher = self.app.consumer._thread._ensure_consumer()._fetcher  # aiokafka's
        self.fetch_sent_at = note_fetch_times(self.fetcher)
        self.checkpoint = Checkpoint(
            self.states,
            self.outbox,
            Outbox(producer),
            self.settings.checkpoint_interval,
            self.settings.checkpoint_records,
        )
        topics = self.settings.topics
        for topic in (topics.predictions, topics.dead_letters):
            await self.outbox.partition_count(topic)

    async def _process(self, partition: int, ready: Any) -> None:
        states = self.states[partition]
        add, home = self.outbox.add, self.outbox.home
        process = self.processor.process
        observed = []  # observations' record times, for the latency histogram
        for message, timestamp in ready:
            if message.topic == self.observations:
                observed.append(timestamp)
            record = Record(
                message.topic, partition, message.offset, timestamp / 1000.0,
                message.key, message.value,
            )  # fmt: skip
            for output in process(record, states):
                add(
                    output.topic,
                    home(output.topic, output.key) if output.partition is None
                    else output.partition,
                    output.key,
                    output.value,
                    None if output.timestamp is None else int(output.timestamp * 1000),
                )  # fmt: skip
            self.checkpoint.record(TP(message.topic, partition), message.offset)
            if self.checkpoint.count >= self.checkpoint.records and not await self._checkpoint():
                return  # refused: everything was dropped, and is read again
        self.app.metrics.latency.observe_batch(observed)

    def _where(self, partition: int) -> Any:
        """Where a topic's partition stands for a head record of a given time (ms), by what
        aiokafka last fetched: caught up once fetched to its end by a fetch sent `merge_grace`
        seconds after that time (a record written before it has reached the broker by then).
        A partition with no fetch for `FETCH_STALE_MS` (its leader is failing over) counts as
        behind: what it holds is not known."""
        assignment = self.fetcher._subscriptions.subscription.assignment
        grace_ms = self.settings.merge_grace * 1000.0
        now_ms = time.time() * 1000.0

        def where(topic: str, since: float) -> Other:
            tp = TP(topic, partition)
            state = None if assignment is None else assignment.state_value(tp)
            highwater = None if state is None else state.highwater
            if highwater is None or not state.has_valid_position or state.position < highwater:
                return Other.BEHIND  # never fetched since assigned or sought, or records wait
            sent = self.fetch_sent_at.get(tp)
            if sent is None or now_ms - sent > FETCH_STALE_MS:
                return Other.BEHIND
            return Other.CAUGHT_UP if sent >= since + grace_ms else Other.AT_END

        return where

    def _note_stall(self, partition: int, merge: Merge) -> None:
        """One line when a partition's records stop waiting for a topic that stalled, and one
        when it flows again: while it is stalled, a re-read may merge its records otherwise."""
        if merge.stalled:
            log.warning(
                "partition %d: one input topic has delivered nothing for %.0f s although the"
                " broker holds more; the other goes on without it, and a re-read after a crash"
                " may interleave them otherwise",
                partition,
                merge.stalled_wait,
            )
        else:
            log.info("partition %d: both input topics flow again", partition)

    def _fresh(self, tp: TP, batch: list) -> list:
        """The records of `batch` not delivered before, and a count of any never delivered.

        Faust seeks the inputs to their commits once more after a rebalance, while the intake
        may already be past them: what comes again is dropped here, as Faust's read filter did.
        """
        expected = self.next_offset.get(tp)
        if batch and expected is not None and batch[0].offset < expected:
            batch = [record for record in batch if record.offset >= expected]
        for record in batch:
            hole = self.holes.seen(tp, record.offset)
            if hole is not None:
                self.processor.counters.skipped += hole[1] - hole[0] + 1
                log.error(
                    "offsets %d-%d of %s were never delivered to this worker, so what they hold"
                    " goes unlearned",
                    *hole,
                    tp,
                )
        if batch:
            self.next_offset[tp] = batch[-1].offset + 1
        return batch

    async def _checkpoint(self) -> bool:
        """Cut a checkpoint and write it in the background, once the last one is written;
        False if that one failed (then everything since the one before is read again)."""
        if not await self._written():
            return False
        self.writing = asyncio.ensure_future(self._write(await self.checkpoint.cut()))
        return True

    async def _written(self) -> bool:
        """Wait for the checkpoint being written, if any; if it failed, drop what it covered
        and everything since, and go back to the commits to read it again."""
        writing, self.writing = self.writing, None
        if writing is None or await writing:
            return True
        self._forget()
        return False

    async def _checkpoint_now(self) -> bool:
        """A checkpoint of everything processed so far, waited for (partitions moving away,
        or the worker stopping); False if it failed."""
        if self.checkpoint is None:
            return True
        if self.checkpoint.pending() and not await self._checkpoint():
            return False
        return await self._written()

    async def _write(self, cut: Cut) -> bool:
        store = self.table.data
        try:
            changelog = self.table.changelog_topic.get_topic_name()
            with self.app.metrics.checkpoint.time():  # written while the intake goes on
                return await self.checkpoint.write(
                    cut, changelog, self._commit, store._db_for_partition, store.offset_key
                )
        except (KafkaError, ProducerSendError) as error:  # a delivery failed after retries
            log.warning("checkpoint failed (%r): its records are read again", error)
        except StateTooLarge as error:  # every retry would fail the same way
            self._stop_for(error)
        return False

    def _stop_for(self, error: StreamlearnError) -> None:
        """Stop the worker for a problem no retry can fix: an error line, then the stop a
        SIGTERM makes, without a last checkpoint, so what is not committed is read again."""
        log.error("%s", error)
        self.fatal = error
        self.stopped = True
        os.kill(os.getpid(), signal.SIGTERM)

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        return await commit_inputs(self.app.consumer, offsets)

    def _load(self, partition: int, key: bytes) -> bytes | None:
        return self.table.data._db_for_partition(partition).get(key)

    def _forget(self) -> None:
        """Drop everything not checkpointed, and go back to the commits to read it again
        (a rebalance does that anyway; without one, the next `run` does)."""
        self.states.drop()
        self.checkpoint.forget()
        for merge in self.merges.values():
            merge.clear()
        self.rewind = True

    async def on_revoked(self, revoked: set[int]) -> None:
        """Partitions are about to move: checkpoint what can be, then forget the `revoked`
        ones (everything, if the checkpoint failed: then its records are read again)."""
        async with self.lock:
            if await self._checkpoint_now():
                self.states.drop(revoked)
            for merge in self.merges.values():
                merge.clear()

    def on_resumed(self, resume: Mapping[TP, int]) -> None:
        """Input partitions were sought to `resume`: what is buffered comes again."""
        self.rewind = False
        for merge in self.merges.values():
            merge.clear()
        self.next_offset = dict(resume)
        self.holes.reset(resume)

    async def stop(self) -> None:
        """A last checkpoint before the worker stops; records fetched later are not processed
        (the next owner reads them from the commit)."""
        async with self.lock:
            self.stopped = True
            if self.fatal is None:
                await self._checkpoint_now()
