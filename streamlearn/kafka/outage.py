"""Broker outages without log floods: the client libraries' "cannot reach the broker" records
become a few lines of streamlearn's own.

With the broker gone, aiokafka logs an ERROR for every failed connect, metadata refresh, fetch
and heartbeat, and its producer, with records waiting for a leader, refreshes metadata in a loop
with no pause (`Sender._sender_routine` waits on `force_metadata_update` alone): a worker wrote
~129,000 lines in a 30 s outage, `streamlearn produce` ~250,000. `Outage` is a logging filter
that recognises those records (`unreachable`), holds them back and counts them, and says
instead: one line when the broker goes, a reminder every `REMIND` seconds, one line when it
answers again (`Outage` says how it tells a cluster that lost one broker from one that lost
all). Every other record passes. `pace_metadata` pauses between failed metadata
refreshes, so the loop does not burn a core either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError
from aiokafka.errors import KafkaError as ClientKafkaError

from streamlearn.errors import KafkaError
from streamlearn.kafka.security import PLAINTEXT, Security

log = logging.getLogger("streamlearn")
T = TypeVar("T")

REMIND = 30.0  # seconds between two "still unreachable" lines
CHECK = 1.0  # seconds between two probes of a broker that went away
SETTLE = 10.0  # after it is back: stale connection errors of the libraries are held, not news
METADATA_PAUSE = 0.5  # seconds between two failed metadata refreshes of one client
DEFAULT_BROKER_TIMEOUT = 30.0  # produce and tail give up after this long without the broker
STOP_GRACE = 5.0  # seconds the work `guard` cancels gets to clean up
LIBRARIES = ("aiokafka", "faust", "mode")

# Records that say the broker cannot be reached: they start an outage.
GONE = re.compile(
    r"Unable connect to|Unable to update metadata|Unable to request metadata"
    r"|Connect call failed|NodeNotReadyError|KafkaConnectionError|ConnectionRefusedError"
    r"|Connection at \S+ closed|Connection reset by peer|Broken pipe|Errno 111"
)
# Records that follow from it (the coordinator and requests of a broker that went away): held
# while the broker is gone, passed through otherwise (a rebalance logs them too).
FOLLOWS = re.compile(
    r"coordinator dead|Heartbeat failed|Heartbeat send request failed|RequestTimedOutError"
    r"|KafkaTimeoutError|Coordinator Request failed|Failed fetch messages"
    r"|NotLeaderForPartitionError|LeaderNotAvailableError"
)
GONE_ERRORS = (KafkaConnectionError, NodeNotReadyError, ConnectionError)


def _from_library(record: logging.LogRecord) -> bool:
    return any(record.name == lib or record.name.startswith(lib + ".") for lib in LIBRARIES)


def unreachable(record: logging.LogRecord) -> str | None:
    """`gone` for a library record saying the broker cannot be reached, `follows` for one
    that follows from that, None for anything else (which is never held back)."""
    if not _from_library(record):
        return None
    error = record.exc_info[1] if record.exc_info else None
    message = record.getMessage()
    if isinstance(error, GONE_ERRORS) or GONE.search(message):
        return "gone"
    if FOLLOWS.search(message):
        return "follows"
    return None


def _cause(record: logging.LogRecord) -> str:
    """The end of a library message, where the cause is: `[Errno 111] Connect call failed …`."""
    message = record.getMessage().strip().splitlines()[0]
    return message.split(": ", 1)[-1] if ": " in message else message


class Outage(logging.Filter):
    """Watches the brokers at one bootstrap address through the libraries' log records; see
    the module docstring.

    A record saying a broker cannot be reached starts an episode: it and those after it are
    held back, and `check` (every second, from `watch` or `guard`) probes the bootstrap
    address. If no broker answers, the broker is gone: one line, a reminder every `remind`
    seconds, one line when a probe gets an answer. If the cluster answers while connection
    errors go on (one broker of several is down), one line after `SETTLE` seconds of them, a
    reminder likewise, and one line when they stop; a blip shorter than that says nothing.

    Attached to the handlers (`install`), so records of every logger pass through it once.
    Thread-safe: Faust's consumer logs from its own thread. `announce=False` holds the records
    without lines of its own, and those that follow from an outage even before one is seen (a
    command that ends with one error line instead).
    """

    def __init__(
        self,
        broker: str,
        announce: bool = True,
        remind: float = REMIND,
        clock: Callable[[], float] = time.monotonic,
        security: Security = PLAINTEXT,
    ) -> None:
        super().__init__()
        self.broker = broker
        self.what = f"Kafka broker{'s' if ',' in broker else ''} at {broker}"
        self.security = security  # for the probes: the broker may let only its clients in
        self.announce = announce
        self.remind = remind
        self.clock = clock
        self.lock = threading.Lock()
        self.since: float | None = None  # the first record of this episode, if one is on
        self.last = 0.0  # the last record held back
        self.down_since: float | None = None  # since when no broker answers, if none does
        self.partial = False  # said that part of the cluster does not answer
        self.cause = ""
        self.held = 0  # records held back in this episode
        self.reminded = 0.0
        self.settled_at = 0.0  # until when stale records after a return are held

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "streamlearn_outage", None) is not None:
            return record.streamlearn_outage  # seen by another handler already
        kind = unreachable(record)
        keep = True
        if kind is not None:
            with self.lock:
                now = self.clock()
                if self.since is None and kind == "gone" and now >= self.settled_at:
                    self.since, self.held, self.cause = now, 0, _cause(record)
                    self.down_since, self.partial = None, False
                if self.since is not None or now < self.settled_at or not self.announce:
                    self.held += 1
                    self.last = now
                    keep = False
        record.streamlearn_outage = keep
        return keep

    def down_for(self) -> float:
        """Seconds since no broker answers; 0 while one does."""
        since = self.down_since
        return 0.0 if since is None else self.clock() - since

    def _say(self, message: str, *args: object) -> None:
        if self.announce:
            log.warning(message, *args)

    async def check(self, timeout: float = 5.0) -> None:
        """During an episode: probe the brokers, and say what changed (see the class)."""
        if self.since is None:
            return
        answers = await reachable(self.broker, timeout, self.security)
        with self.lock:
            now, since, held = self.clock(), self.since, self.held
            if since is None:
                return
            if not answers:
                if self.down_since is None:
                    self.down_since = now if self.partial else since
                    self.reminded = now
                    self._say(
                        "lost the %s (%s): holding the client libraries' connection errors back"
                        " and retrying until it answers; nothing processed is lost",
                        self.what,
                        self.cause,
                    )
                elif now - self.reminded >= self.remind:
                    self.reminded = now
                    self._say(
                        "the %s is still unreachable after %.0fs (%s); %d library messages held"
                        " back so far",
                        self.what,
                        now - self.down_since,
                        self.cause,
                        held,
                    )
                return
            if self.down_since is not None:
                self._say(
                    "the %s answers again after %.0fs away (%d library messages held back);"
                    " resuming where processing stopped",
                    self.what,
                    now - self.down_since,
                    held,
                )
                self.since, self.down_since = None, None
                self.settled_at = now + SETTLE
            elif now - self.last >= SETTLE:
                if self.partial:
                    self._say(
                        "the connection errors to part of the %s stopped after %.0fs (%d"
                        " library messages held back)",
                        self.what,
                        self.last - since,
                        held,
                    )
                self.since = None
            elif (self.partial and now - self.reminded >= self.remind) or (
                not self.partial and now - since >= SETTLE
            ):
                self.partial, self.reminded = True, now
                self._say(
                    "part of the %s does not answer (%s), the rest does: holding the client"
                    " libraries' connection errors back; %d so far",
                    self.what,
                    self.cause,
                    held,
                )

    async def watch(self, interval: float = CHECK) -> None:
        """`check` every `interval` seconds, for ever (a task of the worker)."""
        while True:
            await asyncio.sleep(interval)
            await self.check()

    def install(self) -> list[logging.Handler]:
        """Filter every record the root logger's handlers get (Python's last-resort handler
        when there are none); the handlers filtered, for `uninstall`."""
        handlers = [h for h in logging.getLogger().handlers or [logging.lastResort] if h]
        for handler in handlers:
            handler.addFilter(self)
        return handlers

    def uninstall(self, handlers: list[logging.Handler]) -> None:
        for handler in handlers:
            handler.removeFilter(self)

    @contextlib.contextmanager
    def attached(self) -> Iterator[Outage]:
        """`install` for the `with` block."""
        handlers = self.install()
        try:
            yield self
        finally:
            self.uninstall(handlers)

    async def guard(self, work: Awaitable[T], timeout: float, doing: Callable[[], str]) -> T:
        """Run `work`; raise a one-line `KafkaError` once the broker has been gone for
        `timeout` seconds (`doing()` says what was cut short), cancelling `work`."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=min(CHECK, timeout))
                if done:
                    return task.result()
                await self.check(min(5.0, timeout))
                if self.down_for() >= timeout:
                    raise KafkaError(
                        f"the {self.what} has not answered for"
                        f" {self.down_for():.0f}s ({self.cause}); {doing()}; raise"
                        " --broker-timeout to wait longer"
                    )
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=STOP_GRACE)  # its clean-up may need the broker


async def reachable(bootstrap: str, timeout: float = 5.0, security: Security = PLAINTEXT) -> bool:
    """Whether a broker at `bootstrap` answers a metadata request within `timeout`.

    Not `broker.probe`, which silences the aiokafka logger meanwhile: in a worker, that would
    hide the other threads' records too, errors that are not about this broker among them."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=max(1000, int(timeout * 1000)),
        **security.client_kwargs(),
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        return bool(client.cluster.brokers())
    except (TimeoutError, ClientKafkaError, OSError):
        return False
    finally:
        await client.close()


def pace_metadata(client: Any, pause: float = METADATA_PAUSE) -> None:
    """Make an aiokafka client wait `pause` seconds after a failed metadata refresh before it
    reports the failure, so no caller can retry in a loop without a pause."""
    update = client._metadata_update  # the one call `_md_synchronizer` makes per refresh

    async def paced(*args: Any, **kwargs: Any) -> bool:
        ok = await update(*args, **kwargs)
        if not ok:
            await asyncio.sleep(pause)
        return ok

    client._metadata_update = paced
