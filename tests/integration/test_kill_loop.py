"""A shortened kill loop, as an operator's soak runs it: workers SIGKILLed and restarted while
events flow, one with its data dir wiped, one stopped with SIGTERM.

Every observation must be answered, every copy of a prediction identical, and every label
learned exactly once: every prediction is River's for its key after `n_learned` labels, and the
probes sent at the end find every label learned (streamlearn/learning/audit.py, which the soak in
`bench/soak.py` runs too).
"""

from __future__ import annotations

import asyncio
import shutil

from streamlearn.learning.audit import audit
from streamlearn.learning.models import load_factory
from streamlearn.testing import TopicReader
from tests.integration.test_scale_out import probe_all, probe_events, send, stream

PARTITIONS = 8
FLAGS = ("--session-timeout", "6", "--checkpoint-records", "300")
# After each chunk of the stream: what happens to which worker.
SCHEDULE = ["kill w1", None, "kill w2, wipe", None, "stop w1", "kill w2", None, None]


async def test_kill_loop_loses_nothing_and_duplicates_are_identical(
    kafka_bootstrap, topics, workers
):
    team = {name: workers.start(name, extra_args=FLAGS) for name in ("w1", "w2")}
    events = stream()
    size = -(-len(events) // len(SCHEDULE))
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        for n, action in enumerate(SCHEDULE):
            chunk = events[n * size : (n + 1) * size]
            await asyncio.to_thread(send, kafka_bootstrap, topics, chunk)
            if action is None:
                continue
            verb, name = action.split()[0], action.split()[1].rstrip(",")
            worker = team[name]
            code = await asyncio.to_thread(worker.kill if verb == "kill" else worker.stop)
            assert code == (-9 if verb == "kill" else 0)
            if "wipe" in action:
                shutil.rmtree(worker.data_dir)
            await asyncio.to_thread(worker.start)
        await workers.drained(timeout=180)
        probes = await probe_all(kafka_bootstrap, topics, reader)
        values = reader.values()
    assert len(probes) == len({key for _, key, _ in events})
    result = audit(events + probe_events(), values, load_factory("linear-regression"))
    assert result.problems() == [], result.summary()
