"""Every key's state as of its partition's last checkpoint, read while the workers run.

`streamlearn export` reads the state table's changelog, not the workers: it stops nothing and
asks no worker for anything. It applies the recovery's rule (store.py): first it reads
the app's committed input offsets, then the changelog's end, then the changelog up to that end,
keeping per key the last record whose input offsets a commit covers. A checkpoint sends its
states before it commits (checkpoint.py), so every checkpoint committed before the
export started is wholly below that end; records of a checkpoint that had not committed yet are
passed over, as a recovering worker would pass them over. Each partition is thus exactly its
last checkpoint: what a worker rebuilding it would start from. The states stay the pickled
bytes the app wrote; nothing is unpickled here.
"""

from __future__ import annotations

from collections.abc import Collection

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamlearn.errors import ConfigError
from streamlearn.kafka.broker import admin, partition_counts, require_broker
from streamlearn.kafka.security import PLAINTEXT, Security
from streamlearn.settings import Topics
from streamlearn.worker.store import covered


def changelog_topic(app_id: str) -> str:
    """The state table's changelog, as Faust names it."""
    return f"{app_id}-state-changelog"


async def checkpointed_states(
    bootstrap: str,
    app_id: str,
    topics: Topics,
    keys: Collection[bytes] = (),
    *,
    security: Security = PLAINTEXT,
) -> dict[bytes, bytes]:
    """`{key: pickled KeyState}` of every key (or of `keys`) as of its last checkpoint."""
    await require_broker(bootstrap, security=security)
    changelog = changelog_topic(app_id)
    partitions = (await partition_counts(bootstrap, [changelog], security=security)).get(changelog)
    if partitions is None:
        raise ConfigError(
            f"app {app_id!r} has no state changelog ({changelog}): no worker of it has run on"
            " this broker (check --app-id and --broker)"
        )
    async with admin(bootstrap, security=security) as client:
        offsets = await client.list_consumer_group_offsets(app_id)
    committed = {
        p: tuple(
            offsets[tp].offset if (tp := TopicPartition(topic, p)) in offsets else 0
            for topic in (topics.observations, topics.labels)
        )
        for p in range(partitions)
    }
    consumer = AIOKafkaConsumer(  # no group: it starts each partition at its beginning
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
        **security.client_kwargs(),
    )  # fmt: skip
    await consumer.start()
    try:
        tps = [TopicPartition(changelog, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        return await _read_until(consumer, ends, committed, set(keys))
    finally:
        await consumer.stop()


async def _read_until(
    consumer: AIOKafkaConsumer,
    ends: dict[TopicPartition, int],
    committed: dict[int, tuple[int, int]],
    keys: set[bytes],
) -> dict[bytes, bytes]:
    """Read each partition up to its end; the last covered value per key (deletes drop it)."""
    states: dict[bytes, bytes] = {}
    left = {tp for tp, end in ends.items() if end > 0}
    while left:
        batches = await consumer.getmany(*left, timeout_ms=1000)
        for tp, records in batches.items():
            for record in records:
                if record.offset >= ends[tp] or (keys and record.key not in keys):
                    continue
                if not covered(record.headers, committed[tp.partition]):
                    continue
                if record.value is None:
                    states.pop(record.key, None)
                else:
                    states[record.key] = record.value
        left = {tp for tp in left if await consumer.position(tp) < ends[tp]}
    return states
