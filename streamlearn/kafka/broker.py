"""Talking to a Kafka broker: is it there, and do the topics streamlearn needs exist.

Every command that needs a broker calls `require_broker` first, so an unreachable broker is one
clear line within seconds instead of a client retrying forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Mapping

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError as ClientKafkaError
from aiokafka.errors import TopicAlreadyExistsError

from streamlearn.errors import KafkaError
from streamlearn.settings import Topics


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a library logger for the duration of a probe that expects failures."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.asynccontextmanager
async def admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client for the broker at `bootstrap`, closed on the way out."""
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def probe(bootstrap: str, timeout: float = 5.0) -> bool:
    """True when a broker at `bootstrap` answers a metadata request with itself in it."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(timeout * 1000))
    )
    with _quiet("aiokafka"):
        try:
            await asyncio.wait_for(client.bootstrap(), timeout)
            return bool(client.cluster.brokers())
        except (TimeoutError, ClientKafkaError, OSError):
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # aiokafka turns Ctrl-C into an error
                raise asyncio.CancelledError from None
            return False
        finally:
            await client.close()


async def require_broker(bootstrap: str, timeout: float = 5.0) -> None:
    """Raise a one-line `KafkaError` unless a broker answers at `bootstrap` within `timeout`."""
    if not await probe(bootstrap, timeout):
        raise KafkaError(
            f"no Kafka broker answers at {bootstrap} (start one with `streamlearn kafka start`"
            " or pass --broker HOST:PORT)"
        )


async def partition_counts(
    bootstrap: str, topics: list[str], timeout: float = 10.0
) -> dict[str, int]:
    """How many partitions each existing topic of `topics` has; missing topics are left out."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        try:
            await asyncio.wait_for(client.bootstrap(), timeout)
            await asyncio.wait_for(client.force_metadata_update(), timeout)
        except (TimeoutError, ClientKafkaError, OSError) as error:
            raise KafkaError(f"the broker at {bootstrap} did not answer: {error!r}") from None
        counts = {}
        for topic in topics:
            parts = client.cluster.partitions_for_topic(topic)
            if parts:
                counts[topic] = len(parts)
        return counts
    finally:
        await client.close()


async def ensure_topics(bootstrap: str, topics: Mapping[str, int]) -> None:
    """Create each topic with its partition count; an existing topic must already have it.

    streamlearn creates its topics explicitly (the local broker has auto-creation off) so that
    observations, labels and the table changelogs are co-partitioned: same count, same hash.
    """
    existing = await partition_counts(bootstrap, list(topics))
    for name, count in existing.items():
        if count != topics[name]:
            raise KafkaError(
                f"topic {name!r} has {count} partitions but {topics[name]} are configured;"
                " use --partitions to match it, or delete the topic"
            )
    missing = [NewTopic(n, p, 1) for n, p in topics.items() if n not in existing]
    if not missing:
        return
    async with admin(bootstrap) as client:
        for topic in missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                await client.create_topics([topic])


async def prepare_topics(bootstrap: str, topics: Topics, partitions: int) -> None:
    """Fail fast on an unreachable broker; create the four topics with one partition count."""
    await require_broker(bootstrap)
    await ensure_topics(bootstrap, dict.fromkeys(topics.names(), partitions))
