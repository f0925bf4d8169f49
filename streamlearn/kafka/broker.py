"""Talking to a Kafka cluster: is it there, may we in, and do the topics streamlearn needs exist.

Every command that needs a broker calls `require_broker` first, so an unreachable broker, a
wrong password or an untrusted certificate is one clear line within seconds instead of a client
retrying forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import KafkaError as ClientKafkaError
from aiokafka.errors import NoError, TopicAlreadyExistsError, for_code
from aiokafka.protocol.metadata import MetadataRequest

from streamlearn.errors import KafkaError
from streamlearn.kafka.security import PLAINTEXT, Security
from streamlearn.settings import Topics

log = logging.getLogger("streamlearn")
MAX_REPLICATION = 3  # the replication factor chosen when none is asked for, brokers permitting


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


def _reraise_cancel() -> None:
    task = asyncio.current_task()
    if task is not None and task.cancelling():  # aiokafka turns Ctrl-C into an error
        raise asyncio.CancelledError from None


@contextlib.asynccontextmanager
async def admin(
    bootstrap: str, *, security: Security = PLAINTEXT
) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client for the cluster at `bootstrap`, closed on the way out."""
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_kwargs())
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def _metadata_client(
    bootstrap: str, security: Security, timeout: float
) -> AIOKafkaClient | None:
    """A started client with the cluster's metadata, or None when no broker let it in."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=max(1000, int(timeout * 1000)),
        **security.client_kwargs(),
    )
    with _quiet("aiokafka"):
        try:
            await asyncio.wait_for(client.bootstrap(), timeout)
            if client.cluster.brokers():
                return client
        except (TimeoutError, ClientKafkaError, OSError):
            _reraise_cancel()
    await client.close()
    return None


async def probe(bootstrap: str, timeout: float = 5.0, *, security: Security = PLAINTEXT) -> bool:
    """True when a broker at `bootstrap` lets us in and answers a metadata request."""
    client = await _metadata_client(bootstrap, security, timeout)
    if client is None:
        return False
    await client.close()
    return True


async def why_unreachable(
    bootstrap: str, security: Security, timeout: float = 5.0
) -> tuple[str, bool]:
    """Why the first bootstrap address refuses us, in words a user can act on, and whether
    anything listens there at all."""
    host, port, _ = collect_hosts(bootstrap, randomize=False)[0]
    address = f"{host}:{port}"
    with _quiet("aiokafka"):
        try:
            conn = await asyncio.wait_for(
                create_conn(
                    host, port, request_timeout_ms=int(timeout * 1000),
                    **security.client_kwargs(),
                ),
                timeout,
            )  # fmt: skip
        except ssl.SSLCertVerificationError as error:
            return (
                f"the TLS certificate of {address} is not trusted ({error.verify_message});"
                " pass --ssl-cafile with the CA that signed it",
                True,
            )
        except ssl.SSLError as error:
            return (
                f"the TLS handshake with {address} failed ({error.reason or error}): does the"
                f" listener speak {security.protocol}, and does it want a client certificate"
                " (--ssl-certfile, --ssl-keyfile)?",
                True,
            )
        except ClientKafkaError as error:
            return _explain(error, address, security), True
        except TimeoutError:
            _reraise_cancel()
            return f"{address} did not answer within {timeout:.0f}s", False
        except ConnectionResetError:  # the listener hung up on the TLS client's greeting
            return (
                f"{address} closed the connection during the TLS handshake: its listener may not"
                " speak TLS (check --security-protocol)",
                True,
            )
        except OSError as error:
            return f"cannot connect to {address}: {error.strerror or error}", False
    try:
        with _quiet("aiokafka"):
            await asyncio.wait_for(conn.send(MetadataRequest([])), timeout)
    except (TimeoutError, ClientKafkaError, OSError):
        _reraise_cancel()
        return (
            f"{address} took the {security.protocol} handshake, then closed the connection at the"
            " first request: its listener may want SASL (check --security-protocol)",
            True,
        )
    finally:
        conn.close()
    return f"{address} let us in but its metadata names no broker we can reach", True


def _explain(error: ClientKafkaError, address: str, security: Security) -> str:
    """A SASL or connection error of aiokafka as one sentence."""
    name = type(error).__name__
    if "Authentication" in name or "SaslAuthentication" in name:
        return (
            f"{address} refused {security.sasl_mechanism} authentication as"
            f" {security.username!r}: wrong user or password"
        )
    if "UnsupportedSaslMechanism" in name:
        return f"{address} does not accept {security.sasl_mechanism}: {error}"
    if "IllegalSaslState" in name:
        return (
            f"{address} does not take SASL: its listener is not {security.protocol}"
            " (check --security-protocol)"
        )
    reason = (
        f"{address} closed the connection during the {security.protocol} handshake: its"
        " listener may use another security protocol (check --security-protocol)"
    )
    if security.uses_tls and security.cert_file is None:
        reason += ", or want a client certificate (--ssl-certfile, --ssl-keyfile)"
    return reason


async def require_broker(
    bootstrap: str, timeout: float = 5.0, *, security: Security = PLAINTEXT
) -> None:
    """Raise a one-line `KafkaError` unless a broker at `bootstrap` lets us in within
    `timeout`, saying why not: nothing listens, TLS, SASL, or a protocol mismatch."""
    if await probe(bootstrap, timeout, security=security):
        return
    reason, listening = await why_unreachable(bootstrap, security, timeout)
    if not listening:
        raise KafkaError(
            f"no Kafka broker answers at {bootstrap}: {reason} (start one with"
            " `streamlearn kafka start` or pass --broker HOST:PORT)"
        )
    raise KafkaError(f"the Kafka broker at {bootstrap} does not let us in: {reason}")


@dataclass(frozen=True)
class TopicInfo:
    """What the metadata says of one topic: its partitions and each one's replicas."""

    partitions: int
    replicas: int  # the fewest replicas any of its partitions has
    under_replicated: int  # partitions with fewer in-sync replicas than replicas right now


async def describe_topics(
    bootstrap: str, topics: list[str], timeout: float = 10.0, *, security: Security = PLAINTEXT
) -> tuple[dict[str, TopicInfo], int]:
    """Each existing topic of `topics` (missing ones are left out), and how many brokers the
    cluster has."""
    client = await _metadata_client(bootstrap, security, timeout)
    if client is None:
        raise KafkaError(f"the broker at {bootstrap} did not answer")
    try:
        try:
            await asyncio.wait_for(client.force_metadata_update(), timeout)
        except (TimeoutError, ClientKafkaError, OSError) as error:
            raise KafkaError(f"the broker at {bootstrap} did not answer: {error!r}") from None
        found = {}
        for topic in topics:
            parts = client.cluster._partitions.get(topic)  # aiokafka keeps no public view
            if parts:
                found[topic] = TopicInfo(
                    len(parts),
                    min(len(p.replicas) for p in parts.values()),
                    sum(len(p.isr) < len(p.replicas) for p in parts.values()),
                )
        return found, len(client.cluster.brokers())
    finally:
        await client.close()


async def partition_counts(
    bootstrap: str, topics: list[str], timeout: float = 10.0, *, security: Security = PLAINTEXT
) -> dict[str, int]:
    """How many partitions each existing topic of `topics` has; missing topics are left out."""
    found, _ = await describe_topics(bootstrap, topics, timeout, security=security)
    return {name: info.partitions for name, info in found.items()}


def replication_for(wanted: int | None, brokers: int) -> int:
    """The replication factor to create topics with: `wanted`, else 3 or as many as there
    are brokers. Raises when the cluster has too few brokers for `wanted`.

    >>> replication_for(None, 1), replication_for(None, 5), replication_for(2, 3)
    (1, 3, 2)
    """
    if wanted is None:
        return min(MAX_REPLICATION, brokers)
    if wanted > brokers:
        raise KafkaError(
            f"--replication-factor {wanted} needs {wanted} brokers; the cluster has {brokers}"
        )
    return wanted


async def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    security: Security = PLAINTEXT,
    replication: int | None = None,
) -> int:
    """Create each topic with its partition count; an existing topic must already have it.

    Returns the replication factor used (`replication_for`). An existing topic with fewer
    replicas, or with partitions under-replicated right now, is reported with a warning.

    streamlearn creates its topics explicitly (the local broker has auto-creation off) so that
    observations, labels and the table changelogs are co-partitioned: same count, same hash.
    """
    existing, brokers = await describe_topics(bootstrap, list(topics), security=security)
    factor = replication_for(replication, brokers)
    _check_existing(existing, topics, factor)
    missing = [NewTopic(n, p, factor) for n, p in topics.items() if n not in existing]
    if not missing:
        return factor
    raced = []  # made by someone else since we looked, or not yet known to the node we asked
    async with admin(bootstrap, security=security) as client:
        response = await client.create_topics(missing)
    for name, code, *message in response.topic_errors:  # aiokafka returns them, not raises
        error = for_code(code)
        if error is TopicAlreadyExistsError:
            raced.append(name)
        elif error is not NoError:
            detail = message[0] if message and message[0] else error.__name__
            raise KafkaError(
                f"the cluster at {bootstrap} refused to create topic {name!r}: {detail}"
            )
    created = await _visible(bootstrap, [t.name for t in missing], security)
    _check_existing({name: created[name] for name in raced}, topics, factor)
    return factor


def _check_existing(found: Mapping[str, TopicInfo], topics: Mapping[str, int], factor: int) -> None:
    """Refuse a topic with another partition count; warn of one with too few replicas."""
    for name, info in found.items():
        if info.partitions != topics[name]:
            raise KafkaError(
                f"topic {name!r} has {info.partitions} partitions but {topics[name]} are"
                " configured; use --partitions to match it, or delete the topic"
            )
        for warning in replication_warnings(name, info, factor):
            log.warning(warning)


async def _visible(
    bootstrap: str, names: list[str], security: Security, timeout: float = 30.0
) -> dict[str, TopicInfo]:
    """The topics `names` once the metadata shows them all: a node learns of a new topic a
    moment after the controller, and a client that asks it first would find none."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found, _ = await describe_topics(bootstrap, names, security=security)
        if len(found) == len(names):
            return found
        if asyncio.get_running_loop().time() > deadline:
            absent = sorted(set(names) - set(found))
            raise KafkaError(f"topics {absent} were created but not visible after {timeout:.0f}s")
        await asyncio.sleep(0.1)


def replication_warnings(name: str, info: TopicInfo, factor: int) -> list[str]:
    """What is unsafe about an existing topic's replication, one sentence per finding.

    >>> replication_warnings("obs", TopicInfo(8, 1, 0), 3)  # doctest: +ELLIPSIS
    ["topic 'obs' has replication factor 1, below the 3 asked for: ..."]
    """
    warnings = []
    if info.replicas < factor:
        warnings.append(
            f"topic {name!r} has replication factor {info.replicas}, below the {factor} asked"
            " for: losing a broker can lose its records (raise it with"
            " kafka-reassign-partitions)"
        )
    if info.under_replicated:
        warnings.append(
            f"topic {name!r} has {info.under_replicated} of {info.partitions} partitions"
            " under-replicated right now (fewer in-sync replicas than replicas)"
        )
    return warnings


async def prepare_topics(
    bootstrap: str,
    topics: Topics,
    partitions: int,
    *,
    security: Security = PLAINTEXT,
    replication: int | None = None,
) -> int:
    """Fail fast on an unreachable broker; create the four topics with one partition count.
    Returns the replication factor they were created with."""
    await require_broker(bootstrap, security=security)
    return await ensure_topics(
        bootstrap, dict.fromkeys(topics.names(), partitions),
        security=security, replication=replication,
    )  # fmt: skip
