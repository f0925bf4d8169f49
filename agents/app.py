"""The streamlearn Faust app: topics, the state table, and one agent that predicts and learns.

Read top to bottom: topics, table, agent, then the small hooks around it.

Why a key's observations, labels, pending entries and model always meet on one partition:
the observations and labels topics and the state table's changelog have the same partition
count, and producers place keys with murmur2 (the Java client's and aiokafka's default). Faust's
assignor gives partition p of all three to the same worker, and a table write inside the agent
goes to partition p of the changelog and of the local RocksDB. A record that a producer put on
another partition is re-sent to its key's partition by the processor, never joined in the
wrong place.

Why nothing is lost or applied twice: one agent with concurrency 1 reads both topics, and it
reads, updates and writes a key's state with no `await` in between, so an observation and a
label of one key can never interleave. Each key's single table value holds the model, the
pending join and the last source offsets applied, written atomically as one changelog record;
a record redelivered after a crash (at-least-once) is recognised by its offset and skipped.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import Any

import click
import faust

from agents.rebalance import Holes, RebalanceLog, resume_from_committed
from agents.transport import Transport
from streamlearn.alerts import alerts
from streamlearn.core import Learner
from streamlearn.errors import StreamlearnError
from streamlearn.models import load_factory
from streamlearn.processor import Processor, Record
from streamlearn.settings import Settings
from streamlearn.state import CachedStore

log = logging.getLogger("streamlearn")
SHUTDOWN_GRACE = 20.0  # seconds from SIGTERM or Ctrl-C to a forced exit if Faust's stop hangs
RAW = {"key_type": bytes, "value_type": bytes}  # a table of bytes is serialized "raw"
RAW_TOPIC = {**RAW, "key_serializer": "raw", "value_serializer": "raw"}  # topics need it said


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured by `settings`, with the streamlearn agent on it."""
    created_at = time.monotonic()
    factory = load_factory(settings.model)
    learner = Learner(factory, settings.model, settings.horizon, settings.max_pending)
    topics = settings.topics
    processor = Processor(learner, topics, settings.partitions, settings.max_event_bytes)

    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.broker}",
        store="rocksdb://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        table_standby_replicas=settings.standby_replicas,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.session_timeout / 10,
        web_port=settings.web_port,
        web_bind=settings.web_host,  # Faust binds 0.0.0.0 unless told
        web_host=settings.web_host,
        # Serve /counters/ and none of Faust's built-in pages: /table/ hands any key's pickled
        # state to whoever asks, and /router/, /graph/ and the stats pages show the cluster's
        # insides. Nothing here needs them (no @app.table_route).
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        producer_max_request_size=4 * 1024 * 1024,
        # Every event writes a changelog record and usually a prediction: without a linger each
        # goes out as its own produce request, and the socket writes cost more than the model.
        producer_linger=0.005,
        consumer_max_fetch_size=4 * 1024 * 1024,
    )
    app.transport = Transport(app.conf.broker_consumer, app)  # see agents/transport.py
    app.processor = processor  # type: ignore[attr-defined]

    sources = app.topic(topics.observations, topics.labels, **RAW_TOPIC)
    outputs = {
        name: app.topic(name, **RAW_TOPIC)
        for name in (topics.observations, topics.labels, topics.predictions, topics.dead_letters)
    }
    table = app.Table(
        "state", partitions=settings.partitions, options={"driver": "rocksdict"}, **RAW
    )
    store = CachedStore(table, settings.cache_size)

    holes = Holes()

    @app.agent(sources, concurrency=1)
    async def predict_and_learn(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            hole = holes.seen(message.tp, message.offset)
            if hole is not None:
                processor.counters.skipped += hole[1] - hole[0] + 1
                log.error(
                    "offsets %d-%d of %s were never delivered to this worker, so what they hold"
                    " goes unlearned",
                    *hole,
                    message.tp,
                )
            record = Record(
                message.topic,
                message.partition,
                message.offset,
                message.timestamp,
                message.key,
                message.value,
            )
            for output in processor.process(record, store):
                # force: publish now. Faust would otherwise hold the message until the source
                # offset commits (seconds); it still flushes the producer before every commit.
                await outputs[output.topic].send(
                    key=output.key,
                    value=output.value,
                    partition=output.partition,
                    timestamp=output.timestamp,
                    force=True,
                )

    rebalances = RebalanceLog(topics.observations)

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        store.clear()  # partitions are moving: a cached state may soon belong to another worker
        rebalances.revoked()

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: Any, **kwargs: Any) -> None:
        store.clear()  # the table is about to be recovered from the changelog
        rebalances.assigned(assigned)

    @app.on_rebalance_complete.connect
    async def on_recovered(app: faust.App, **kwargs: Any) -> None:
        # Next Faust resumes the source partitions, seeks them, and only then resumes the flow,
        # which empties every agent's queue: records delivered in between would be dropped
        # unprocessed and unacked, past Faust's read filter. Held here, they wait for the resume.
        app.flow_control.suspend()
        store.clear()
        inputs = (topics.observations, topics.labels)
        holes.reset(await resume_from_committed(app.consumer, inputs))
        rebalances.completed()

    # The ready line and the counters come from the app, not from a Worker subclass, so that
    # `faust -A agents.app worker` logs them too. They are WARNING, not INFO, because Faust's
    # worker shows only WARNING and above unless told otherwise, and they are what an operator
    # watches.

    @app.task
    async def log_ready() -> None:
        # Faust starts an app's tasks once its tables are recovered, and not if it stops first.
        log.warning(
            "streamlearn worker ready in %.1fs: app %s, broker %s, model %s, %d partitions,"
            " web %s:%d, data dir %s",
            time.monotonic() - created_at,
            settings.app_id,
            settings.broker,
            settings.model,
            settings.partitions,
            app.conf.web_bind,
            app.conf.web_port,  # Faust's own --web-port may have changed it
            settings.data_dir,
        )

    logged = processor.counters.as_dict()

    @app.timer(interval=settings.log_interval)
    async def log_counters() -> None:
        # Warnings at most once per interval, with counts: a log a user can still read.
        nonlocal logged
        now = processor.counters.as_dict()
        log.warning("counters %s", now)
        for line in alerts(logged, now, processor.counters.examples):
            log.warning("in the last %.0fs: %s", settings.log_interval, line)
        logged = now

    @app.page("/counters/")
    async def counters(web: Any, request: Any) -> Any:
        return web.json(processor.counters.as_dict())

    return app


class Worker(faust.Worker):
    """A Faust worker that always exits on a signal.

    Faust's shutdown can block for good when SIGTERM lands during a rebalance (seen here: the
    consumer thread never stops). After `SHUTDOWN_GRACE` seconds the process exits anyway: with
    code 0 if the producer was flushed (offsets not committed are re-read by the next owner and
    recognised by the offsets in each key's state), else 1, which is a crash the state survives.
    """

    def __init__(self, app: faust.App, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.flushed = False
        self.watchdog: threading.Timer | None = None
        app.on_before_shutdown.connect(self._flush)

    async def _flush(self, app: faust.App, **kwargs: Any) -> None:
        await app.producer.flush()
        self.flushed = True

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        super()._schedule_shutdown(signal)
        if self.watchdog is None:
            self.watchdog = threading.Timer(SHUTDOWN_GRACE, self._exit_now)
            self.watchdog.daemon = True
            self.watchdog.start()

    def _exit_now(self) -> None:
        log.warning(
            "shutdown still blocked after %.0fs (Faust stuck in a rebalance); exiting now, %s",
            SHUTDOWN_GRACE,
            "everything produced is flushed" if self.flushed else "as after a crash",
        )
        logging.shutdown()
        os._exit(0 if self.flushed else 1)


def __getattr__(name: str) -> Any:
    """`faust -A agents.app worker` finds `app`, built once from `STREAMLEARN_*` variables."""
    if name == "app":
        app = globals()["app"] = _app_from_env()  # Faust looks it up more than once
        return app
    raise AttributeError(name)


def _app_from_env() -> faust.App:
    """The app from `STREAMLEARN_*` variables; a bad one is one `streamlearn: error: …` line on
    stderr and exit code 2, as `streamlearn worker` reports it, instead of Faust's traceback."""
    from streamlearn.cli import settings_from_env

    try:
        return create_app(settings_from_env())
    except click.ClickException as error:
        message = error.format_message()
    except StreamlearnError as error:
        message = str(error)
    print(f"streamlearn: error: {message}", file=sys.stderr)
    raise SystemExit(2)
