"""Fault injection for worker subprocesses, loaded when this folder leads their PYTHONPATH.

Each fault forces a race that is otherwise a few milliseconds wide.

`STREAMLEARN_TEST_RACE=<seconds>`: after a rebalance Faust resumes the source partitions, seeks
them, then resumes the flow, which empties the agents' queues. Here its seek ends the moment a
record waits in an agent's queue (or after that many seconds), and Faust goes on to resume the
flow without letting the agent run first: a slow broker reply can end the seek at that moment,
and the agent can be busy.

`STREAMLEARN_TEST_CRASH_BEFORE_COMMIT=<n>`: the worker kills itself with SIGKILL in its n-th
checkpoint, after its changelog writes and outputs are acknowledged and before the input offsets
are committed.

`STREAMLEARN_TEST_FETCH_WHILE_PAUSED=1`: a fetch is always waiting, as one that started just
before a rebalance paused every partition does, and every seek returns only once aiokafka has
fetched from where it sought (or after 2 s), as a busy event loop lets it. Whatever that fetch
hands over for a partition not yet resumed, Faust drops.

`STREAMLEARN_TEST_SLOW_TOPIC=<topic>:<seconds>`: after each assignment, that topic's partitions
are fetched only that many seconds after the others, as when their leader is a slow or failing
broker while the other topic's leader answers at once.
"""

import os

limit = os.environ.get("STREAMLEARN_TEST_RACE")
if limit:
    import asyncio
    import logging
    import time

    from faust.tables.recovery import Recovery
    from faust.transport.consumer import Consumer

    perform_seek, recovery_wait = Consumer.perform_seek, Recovery._wait

    async def seek_until_a_record_waits(self):
        await perform_seek(self)
        channels = self.app.topics._topics  # the agents' source topics, each with its queue
        deadline = time.monotonic() + float(limit)
        while time.monotonic() < deadline and not any(c.queue.qsize() for c in channels):
            await asyncio.sleep(0)
        logging.getLogger("streamlearn").warning(
            "fault injected: the seek after the rebalance returns with %d records queued",
            sum(c.queue.qsize() for c in channels),
        )

    async def wait_without_yielding_after_the_seek(self, coro, timeout=None):
        if getattr(coro, "__name__", "") != seek_until_a_record_waits.__name__:
            return await recovery_wait(self, coro, timeout)
        await coro  # Faust's own wait would give the agent a turn before the flow resumes

    Consumer.perform_seek = seek_until_a_record_waits
    Recovery._wait = wait_without_yielding_after_the_seek

if os.environ.get("STREAMLEARN_TEST_FETCH_WHILE_PAUSED"):
    import asyncio
    import logging
    import time
    from itertools import starmap

    from aiokafka.errors import ConsumerStoppedError
    from faust.transport.consumer import Consumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    seek_wait = AIOKafkaConsumerThread.seek_wait

    async def always_wait_for_records(self, timeout):
        if not getattr(self, "fault_logged", False):
            self.fault_logged = True
            logging.getLogger("streamlearn").warning(
                "fault injected: a fetch always waits, whatever the flow and the pauses"
            )
        active = self._get_active_partitions()
        return await self._getmany(active_partitions=active, timeout=timeout), active

    async def fetch_records_even_when_the_flow_stopped(
        self, consumer, active_partitions, timeout=None, max_records=None
    ):
        fetcher = consumer._fetcher
        if consumer._closed or fetcher._closed:
            raise ConsumerStoppedError()
        with fetcher._subscriptions.fetch_context():
            return await fetcher.fetched_records(
                active_partitions, timeout=timeout, max_records=max_records
            )

    async def seek_then_let_a_fetch_arrive(self, partitions):
        await seek_wait(self, partitions)
        fetcher = self._ensure_consumer()._fetcher
        assignment = fetcher._subscriptions.subscription.assignment

        def fetched(tp, offset):
            state = assignment.state_value(tp)
            moved = state is not None and state.has_valid_position and state.position != offset
            return tp in fetcher._records or moved

        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and not any(starmap(fetched, partitions.items())):
            await asyncio.sleep(0.001)

    Consumer._wait_next_records = always_wait_for_records
    AIOKafkaConsumerThread._fetch_records = fetch_records_even_when_the_flow_stopped
    AIOKafkaConsumerThread.seek_wait = seek_then_let_a_fetch_arrive


crash_at = os.environ.get("STREAMLEARN_TEST_CRASH_BEFORE_COMMIT")
if crash_at:
    import logging
    import signal

    from aiokafka import AIOKafkaConsumer

    commit = AIOKafkaConsumer.commit
    commits = [0]

    async def commit_or_die(self, *args, **kwargs):
        # Only the checkpoint commits input offsets (worker/checkpoint.py, step 3): by now its
        # changelog records and outputs are acknowledged by the broker, and nothing is committed.
        commits[0] += 1
        if commits[0] == int(crash_at):
            logging.getLogger("streamlearn").warning(
                "fault injected: SIGKILL after checkpoint %d's changelog writes, before its commit",
                commits[0],
            )
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)
        return await commit(self, *args, **kwargs)

    AIOKafkaConsumer.commit = commit_or_die


slow = os.environ.get("STREAMLEARN_TEST_SLOW_TOPIC")
if slow:
    import logging
    import time

    from aiokafka.consumer.fetcher import Fetcher

    slow_topic, slow_seconds = slow.rsplit(":", 1)
    actions_per_node = Fetcher._get_actions_per_node
    first_seen: dict[int, float] = {}  # assignment (one per rebalance) -> when first fetched

    class WithoutSlowTopic:
        """An assignment whose partitions of the slow topic are left out of the next fetch."""

        def __init__(self, assignment):
            self.assignment = assignment

        @property
        def tps(self):
            return {tp for tp in self.assignment.tps if tp.topic != slow_topic}

        def __getattr__(self, name):
            return getattr(self.assignment, name)

    def fetching(assignment) -> bool:
        """Whether the other partitions are fetched yet (Faust seeks and resumes them last)."""
        states = (assignment.state_value(tp) for tp in assignment.tps if tp.topic != slow_topic)
        return any(s is not None and s.has_valid_position and not s.paused for s in states)

    def fetch_the_slow_topic_late(self, assignment):
        if id(assignment) not in first_seen and not fetching(assignment):
            return actions_per_node(self, WithoutSlowTopic(assignment))
        since = first_seen.setdefault(id(assignment), time.monotonic())
        if time.monotonic() - since < float(slow_seconds):
            if not getattr(self, "fault_logged", False):
                self.fault_logged = True
                logging.getLogger("streamlearn").warning(
                    "fault injected: %s is fetched %s s after each assignment",
                    slow_topic, slow_seconds,
                )  # fmt: skip
            assignment = WithoutSlowTopic(assignment)
        return actions_per_node(self, assignment)

    Fetcher._get_actions_per_node = fetch_the_slow_topic_late
