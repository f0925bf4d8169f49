"""Faust's Kafka transport, changed so aiokafka never hands over records of paused partitions,
and so the input records go to the app's intake in batches.

Faust asks aiokafka's fetcher for records of its live set of active partitions, and aiokafka
reads an empty set as "every partition". A rebalance pauses every partition while a fetch may
still be waiting, and that fetch then returns whatever arrives next, for any partition, and moves
aiokafka's position past it. Right after a seek, and before the partition resumes, what arrives
next is what the seek asked for: Faust drops it unprocessed, and nothing seeks back. A changelog
recovery then waits forever for those records, and a source partition with no commit skips
them (README, "Scaling out").

It also bounds how long the broker may hold a fetch (`FETCH_MAX_WAIT_MS`): aiokafka keeps one
fetch in flight per broker, made of the partitions with nothing buffered, and Faust sets 1.5 s.
When every input partition had records waiting to be taken, the next fetch held only partitions
that never get data (Faust's leader topic; an input partition without keys) and waited the full
1.5 s while the inputs piled up: at 1,500 pairs/s, predictions came 1.0-1.3 s late from then on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Set
from typing import Any

from faust.transport.consumer import RecordMap
from faust.transport.drivers import aiokafka
from faust.types import TP


class ActivePartitions(Set):
    """A live view of Faust's active partitions that aiokafka never reads as "all of them"."""

    def __init__(self, live: Set) -> None:
        self.live = live

    def __contains__(self, tp: object) -> bool:
        return tp in self.live

    def __iter__(self) -> Iterator[TP]:
        return iter(self.live)

    def __len__(self) -> int:
        return len(self.live)

    def __bool__(self) -> bool:
        return True  # aiokafka tests `if partitions` before it filters by them


FETCH_MAX_WAIT_MS = 50  # what a fetch of idle partitions can delay the next one by


class ConsumerThread(aiokafka.AIOKafkaConsumerThread):
    """Faust's thread for the aiokafka consumer, whose fetches wait `FETCH_MAX_WAIT_MS` at most."""

    def _create_worker_consumer(self, transport: aiokafka.Transport) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # the fetcher reads it when it starts
        return consumer


def note_fetch_times(fetcher: Any) -> dict[TP, int]:
    """For each partition, the time (ms) the last fetch that brought its highwater was sent.

    aiokafka notes when a fetch's response was handled, which can be long after the broker
    answered when the worker is busy; a partition fetched to its end by a fetch sent at T holds
    every record the broker had at T. The merge (learning/merge.py) relies on that time."""
    sent_at: dict[TP, int] = {}
    handle = fetcher._proc_fetch_request  # aiokafka's, which sends a fetch and applies the reply

    async def timed(assignment: Any, node_id: int, request: Any) -> Any:
        sent = int(time.time() * 1000)
        result = await handle(assignment, node_id, request)
        for topic, partitions in request.topics:
            for partition, *_ in partitions:
                tp = TP(topic, partition)
                state = assignment.state_value(tp)
                if state is not None and state.timestamp is not None and state.timestamp >= sent:
                    sent_at[tp] = sent  # this reply set its highwater
        return result

    fetcher._proc_fetch_request = timed
    return sent_at


class Consumer(aiokafka.Consumer):
    """Faust's aiokafka consumer, fetching only from partitions active when the records come,
    and handing the app's input records to its intake (intake.py) batch by batch
    instead of one by one to an agent: Faust's per-record path cost more than the models."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _getmany(self, active_partitions: Set[TP] | None, timeout: float) -> RecordMap:
        if active_partitions is not None:  # None: a client-only app, which reads everything
            active_partitions = ActivePartitions(active_partitions)
        records = await super()._getmany(active_partitions, timeout)
        intake = getattr(self.app, "intake", None)
        if intake is None:
            return records
        records = dict(records)
        # Records fetched before a rebalance's seek can arrive after it began: the intake only
        # buffers them while the flow is stopped, and the seek at its end drops that buffer.
        await intake.take({tp: records.pop(tp) for tp in list(records) if intake.owns(tp)})
        return records


class Transport(aiokafka.Transport):
    """Faust's aiokafka transport with the consumer above."""

    Consumer = Consumer
