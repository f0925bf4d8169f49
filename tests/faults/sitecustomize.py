"""Fault injection for worker subprocesses, loaded when this folder leads their PYTHONPATH.

`STREAMLEARN_TEST_RACE=<seconds>` forces a race that is otherwise a few milliseconds wide. After
a rebalance Faust resumes the source partitions, seeks them, then resumes the flow, which
empties the agents' queues. Here its seek ends the moment a record waits in an agent's queue
(or after that many seconds), and Faust goes on to resume the flow without letting the agent
run first: a slow broker reply can end the seek at that moment, and the agent can be busy.
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
