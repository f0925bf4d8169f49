"""Crashes around a checkpoint (worker/checkpoint.py): a partition comes back as exactly its
last checkpoint, every record after it is read again, and nothing is lost or learned twice.

The oracle is the scale-out tests' one: every key's final model equals one uninterrupted run's,
every observation is answered, and a prediction sent twice is sent identically.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest

from bench.cluster import produce_backlog
from bench.workload import make_workload
from streamlearn.testing import TopicReader, stored_states, until
from tests.integration.conftest import with_faults
from tests.integration.test_scale_out import (
    check_end_state,
    check_one_prediction_per_observation,
    probe_all,
    reference,
    send,
    stream,
)

PARTITIONS = 8
EVERY_500 = ("--checkpoint-records", "500", "--session-timeout", "8")


@pytest.mark.parametrize("wipe", [False, True], ids=["same-disk", "new-disk"])
async def test_a_crash_between_the_changelog_writes_and_the_commit(
    kafka_bootstrap, topics, workers, wipe
):
    await asyncio.to_thread(send, kafka_bootstrap, topics, stream())
    env = with_faults(STREAMLEARN_TEST_CRASH_BEFORE_COMMIT="2")
    crashing = workers.make("w1", extra_args=EVERY_500, env=env)
    crashing.start()
    await asyncio.to_thread(crashing.process.wait, 120)  # it kills itself in checkpoint 2
    assert "fault injected: SIGKILL after checkpoint 2" in crashing.log()
    if wipe:
        shutil.rmtree(crashing.data_dir)  # rebuilt from the changelog alone
    worker = workers.start("w1", extra_args=EVERY_500)  # the same data dir, without the fault
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await workers.drained()
        probes = await probe_all(kafka_bootstrap, topics, reader)
        values = reader.values()
    # The checkpoint's changelog records went out but were never committed: skipped.
    assert "recovery skipped" in worker.log()
    check_end_state(probes, reference())
    check_one_prediction_per_observation(values)
    assert worker.counters()["redelivered"] == 0  # re-read from the checkpoint, not re-applied


async def test_a_crash_with_checkpoints_hours_apart_reads_everything_again(
    kafka_bootstrap, topics, workers
):
    events = stream()
    half = len(events) // 2
    hours = ("--checkpoint-interval", "36000", "--checkpoint-records", "1000000000")
    worker = workers.start(extra_args=(*hours, "--session-timeout", "8"))
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await asyncio.to_thread(send, kafka_bootstrap, topics, events[:half])
        await until(lambda: worker.counters()["consumed"] == half, 60)
        worker.kill()  # nothing was ever checkpointed
        worker.start()
        await asyncio.to_thread(send, kafka_bootstrap, topics, events[half:])
        await until(lambda: worker.counters()["consumed"] == len(events), 120)  # all again
        probes = await probe_all(kafka_bootstrap, topics, reader)
        values = reader.values()
    check_end_state(probes, reference())
    check_one_prediction_per_observation(values)


async def test_a_clean_stop_checkpoints_every_key_into_the_local_store(
    kafka_bootstrap, topics, workers
):
    # Faust closes the tables' RocksDB, and may cancel a checkpoint under way, before its
    # shutdown signal: the last checkpoint is taken before that, while everything still runs.
    workload = make_workload("linear-regression", keys=1000, pairs=20_000, label_delay=10)
    worker = workers.start()
    await produce_backlog(kafka_bootstrap, topics, workload.encoded())
    await until(lambda: worker.counters()["learned"] == workload.pairs, 60)
    assert await asyncio.to_thread(worker.stop, 15) == 0
    assert stored_states(worker.data_dir)[0] == workload.keys
    await workers.drained(timeout=10)  # and the offsets they cover were committed


async def test_a_key_not_written_again_after_a_crash_keeps_every_learn_when_its_partition_moves(
    kafka_bootstrap, topics, workers
):
    """The issue's untested case: state applied before a SIGKILL, no event for its keys after
    the restart, then their partitions move. Had the local RocksDB kept state the changelog
    lacked, the restart would have resumed from it, nothing would have written those keys
    again, and the new owner would rebuild them from the changelog short of learns."""
    events = stream()
    half = len(events) // 2
    labels_after_half = sum(kind == "label" for kind, _, _ in events[half:])
    hours = ("--checkpoint-interval", "36000", "--checkpoint-records", "1000000000")
    w1 = workers.make("w1", extra_args=(*hours, "--session-timeout", "8"))
    w1.start()
    await asyncio.to_thread(send, kafka_bootstrap, topics, events[:half])
    await until(lambda: w1.counters()["consumed"] == half, 60)
    assert w1.stop() == 0  # its last checkpoint: the first half is durable everywhere
    w1.start()
    await asyncio.to_thread(send, kafka_bootstrap, topics, events[half:])
    await until(lambda: w1.counters()["consumed"] == len(events) - half, 60)
    w1.kill()  # the second half is applied in memory, in no checkpoint
    w1.start()  # the same data dir; no event is sent from here on
    await until(lambda: w1.counters()["consumed"] == len(events) - half, 60)
    # Resumed from the checkpoint, not from anything newer: the second half learned again.
    assert w1.counters()["learned"] == labels_after_half
    assert w1.counters()["redelivered"] == 0
    assert w1.stop() == 0  # w1 leaves; w2 takes every partition and rebuilds it from changelog
    w2 = workers.start("w2")
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        probes = await probe_all(kafka_bootstrap, topics, reader)
    assert "gained [0, 1, 2, 3, 4, 5, 6, 7]" in w2.log()
    check_end_state(probes, reference())  # every label, once, from the changelog alone
    assert w2.counters()["learned"] == 0  # nothing left to re-read: all of it came from there
    assert w2.counters()["predicted"] == len(probes)
