"""Snapshots of key states: `replay --save` writes them, `streamlearn load` sends them to an app.

A state holds pickled models, and unpickling runs code, so a worker unpickles a state that came
through the app's input topics only when it is sealed: an HMAC-SHA256 over the key and the
payload with a secret that the workers and `load` share through `STREAMLEARN_STATE_SECRET`.
A bad or missing seal is a `bad-signature` dead letter, never unpickled. `load` checks each seal
before sending, so a wrong secret fails there in one line, not key by key in the dead letters.

A sealed state is `MAGIC + digest + flag + names + state`: `names` are the candidates' names
as JSON (length first), so a worker refuses a state of other candidates without unpickling it,
and `state` is the pickled `KeyState` as the state table holds it, so `export` seals the
changelog's bytes without unpickling them either. It travels as a record of the labels topic,
keyed by its key, so it reaches the key's partition and worker in order with the key's events,
and its effect is checkpointed like any label's (README, "Delivery"). `MAGIC` starts with a NUL
byte: no JSON event starts so. The flag says whether the state may replace one the key already
has (`load --replace`); it is sealed too.

A snapshot file is `FILE_MAGIC`, then per key: the key and its sealed state, each preceded by
its length (4 bytes, big-endian).

    >>> sealed = seal(b"secret", b"k", ("lr",), b"<pickled state>")
    >>> unseal(b"secret", b"k", sealed)
    Opened(names=('lr',), replace=False, state=b'<pickled state>')
    >>> unseal(b"other", b"k", sealed)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    streamlearn.learning.events.Rejected: bad-signature: the state's seal does not match ...
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError as ClientError

from streamlearn.errors import ConfigError, KafkaError
from streamlearn.kafka.broker import partition_counts, require_broker
from streamlearn.kafka.security import PLAINTEXT, Security
from streamlearn.learning.events import Reason, Rejected

SECRET_ENV = "STREAMLEARN_STATE_SECRET"
MAGIC = b"\x00streamlearn-state-1\x00"
FILE_MAGIC = b"streamlearn-snapshot-1\n"
DIGEST = hashlib.sha256().digest_size
KEEP, REPLACE = b"k", b"r"
MAX_RECORD_BYTES = 4 * 1024 * 1024  # what a worker fetches at most (streamlearn/worker/app.py)


@dataclass(frozen=True, slots=True)
class Opened:
    """A state whose seal held: the candidates it was made with, whether it may replace a
    key's state, and the pickled `KeyState` (unpickle it only after checking the names)."""

    names: tuple[str, ...]
    replace: bool
    state: bytes


def secret_from_env(purpose: str) -> bytes:
    """The shared secret, or one clear `ConfigError` saying why it is needed."""
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        raise ConfigError(
            f"{purpose} needs {SECRET_ENV}: the secret that seals states, shared with the"
            " workers (states are pickles, never loaded unauthenticated)"
        )
    return secret.encode()


def is_sealed(value: bytes | None) -> bool:
    """Whether a record of the labels topic is a state to load rather than a label."""
    return value is not None and value.startswith(MAGIC)


def seal(
    secret: bytes, key: bytes, names: tuple[str, ...], state: bytes, replace: bool = False
) -> bytes:
    """The pickled `state` of `key`, made with candidates `names`, sealed for sending."""
    listed = orjson.dumps(list(names))
    body = len(listed).to_bytes(4, "big") + listed + state
    return _sealed(secret, key, (REPLACE if replace else KEEP) + body)


def reseal(secret: bytes, key: bytes, sealed: bytes, replace: bool) -> bytes:
    """The same sealed state with its replace flag set as given; the seal is checked first."""
    payload = _payload(secret, key, sealed)
    return _sealed(secret, key, (REPLACE if replace else KEEP) + payload[1:])


def unseal(secret: bytes | None, key: bytes, sealed: bytes) -> Opened:
    """The sealed state when its seal holds; else `Rejected` (`bad-signature`)."""
    if not secret:
        raise Rejected(Reason.BAD_SIGNATURE, f"this app has no {SECRET_ENV}, so it loads no state")
    payload = _payload(secret, key, sealed)
    size = int.from_bytes(payload[1:5], "big")
    names = tuple(orjson.loads(payload[5 : 5 + size]))
    return Opened(names, payload[:1] == REPLACE, payload[5 + size :])


def _digest(secret: bytes, key: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, len(key).to_bytes(4, "big") + key + payload, hashlib.sha256).digest()


def _sealed(secret: bytes, key: bytes, payload: bytes) -> bytes:
    return MAGIC + _digest(secret, key, payload) + payload


def _payload(secret: bytes, key: bytes, sealed: bytes) -> bytes:
    """The sealed payload, after checking its digest in constant time."""
    digest, payload = sealed[len(MAGIC) : len(MAGIC) + DIGEST], sealed[len(MAGIC) + DIGEST :]
    if not is_sealed(sealed) or not hmac.compare_digest(digest, _digest(secret, key, payload)):
        raise Rejected(
            Reason.BAD_SIGNATURE,
            f"the state's seal does not match this app's {SECRET_ENV}",
        )
    return payload


def write_snapshot(path: Path, entries: Iterable[tuple[bytes, bytes]]) -> int:
    """Write `(key, sealed state)` pairs to `path`; how many."""
    count = 0
    with open(path, "wb") as out:
        out.write(FILE_MAGIC)
        for key, sealed in entries:
            for part in (key, sealed):
                out.write(len(part).to_bytes(4, "big") + part)
            count += 1
    return count


def read_snapshot(path: Path) -> Iterator[tuple[bytes, bytes]]:
    """The `(key, sealed state)` pairs of a snapshot file, seals not yet checked."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read the snapshot {path}: {error.strerror}") from None
    if not data.startswith(FILE_MAGIC):
        raise ConfigError(f"{path} is not a streamlearn snapshot (written by replay --save)")
    at = len(FILE_MAGIC)
    while at < len(data):
        parts = []
        for _ in range(2):
            size = int.from_bytes(data[at : at + 4], "big")
            parts.append(data[at + 4 : at + 4 + size])
            at += 4 + size
        if at > len(data):
            raise ConfigError(f"the snapshot {path} is cut short")
        yield parts[0], parts[1]


async def send_states(
    bootstrap: str,
    topic: str,
    entries: Iterable[tuple[bytes, bytes]],
    *,
    security: Security = PLAINTEXT,
) -> int:
    """Send `(key, sealed state)` records to the app's labels `topic`, keyed so that each
    reaches its key's partition (murmur2, as the worker checks); how many were acknowledged."""
    await require_broker(bootstrap, security=security)
    if topic not in await partition_counts(bootstrap, [topic], security=security):
        raise ConfigError(
            f"the labels topic {topic!r} does not exist: start the app's workers first, or"
            " give the app's --topic-prefix or --labels-topic"
        )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=MAX_RECORD_BYTES,
        **security.client_kwargs(),
    )  # fmt: skip
    await producer.start()
    try:
        sent = [await producer.send(topic, key=key, value=sealed) for key, sealed in entries]
        results = await asyncio.gather(*sent, return_exceptions=True)
    except ClientError as error:  # a state larger than a record may be, say
        raise KafkaError(f"a state could not be sent: {error!r:.300}") from None
    finally:
        await producer.stop()
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise KafkaError(f"{len(failed)} of {len(results)} states were not sent: {failed[0]!r}")
    return len(results)
