"""The streamlearn Faust app: the input topics, the state table, the intake, and their hooks.

Read top to bottom: app, topics, table, intake, then the rebalance and shutdown hooks.

Why a key's observations, labels, pending entries and model always meet on one partition:
the observations and labels topics and the state table's changelog have the same partition
count, and producers place keys with murmur2 (the Java client's and aiokafka's default). Faust's
assignor gives partition p of all three to the same worker, and the checkpoint writes a key's
state to partition p of the changelog and of the local RocksDB. A record that a producer put on
another partition is re-sent to its key's partition by the processor, never joined in the
wrong place.

Why nothing is lost or applied twice: the intake (intake.py) applies one partition's
records in one deterministic order, one at a time, to states held in memory; the checkpoint
(checkpoint.py) writes the changed states to the changelog, waits for every output and
state record to be acknowledged, commits the input offsets, and only then writes the local
RocksDB; recovery skips changelog records that no commit covers (store.py). After a
crash a partition is exactly its last checkpoint, and every record after it is read again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

import click
import faust

from streamlearn.errors import StreamlearnError
from streamlearn.kafka.broker import prepare_topics
from streamlearn.kafka.outage import Outage
from streamlearn.learning.alerts import alerts
from streamlearn.learning.processor import Processor
from streamlearn.serving.routes import add_routes
from streamlearn.settings import Settings
from streamlearn.worker.intake import Intake
from streamlearn.worker.rebalance import RebalanceLog, committed_inputs, resume_from_committed
from streamlearn.worker.store import Table
from streamlearn.worker.transport import Transport

log = logging.getLogger("streamlearn")
SHUTDOWN_GRACE = 20.0  # seconds from SIGTERM or Ctrl-C to a forced exit if Faust's stop hangs
RAW = {"key_type": bytes, "value_type": bytes}  # a table of bytes is serialized "raw"
RAW_TOPIC = {**RAW, "key_serializer": "raw", "value_serializer": "raw"}  # topics need it said


class App(faust.App):
    """A Faust app that takes its last checkpoint before Faust stops the consumer and tables.

    Faust sends `on_before_shutdown` only after it has closed the tables' RocksDB, too late
    to write a checkpoint's states; here the intake stops first, while all of it still runs.
    It also turns the libraries' flood of errors while the broker is gone into a few lines
    (streamlearn/kafka/outage.py), from its first start, once the worker's logging is set up.
    """

    async def on_first_start(self) -> None:
        outage = getattr(self, "outage", None)
        if outage is not None:
            outage.install()
            self.add_future(outage.watch())
        await super().on_first_start()

    async def on_stop(self) -> None:
        intake = getattr(self, "intake", None)
        if intake is not None:
            await intake.stop()
        await super().on_stop()


def prepared_app(settings: Settings) -> faust.App:
    """The app, once its broker has let us in and the four topics exist: `create_app` with the
    replication factor the topics were created with, which Faust's own topics take too."""
    replication = asyncio.run(
        prepare_topics(
            settings.broker, settings.topics, settings.partitions,
            security=settings.security, replication=settings.replication,
        )
    )  # fmt: skip
    asyncio.set_event_loop(asyncio.new_event_loop())  # asyncio.run left none for Faust
    return create_app(dataclasses.replace(settings, replication=replication))


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured by `settings`, with the streamlearn intake on it."""
    created_at = time.monotonic()
    learner = settings.learner()
    topics = settings.topics
    processor = Processor(
        learner, topics, settings.partitions, settings.max_event_bytes, settings.state_secret
    )

    app = App(
        settings.app_id,
        broker=[f"kafka://{address.strip()}" for address in settings.broker.split(",")],
        broker_credentials=settings.security.faust_credentials(),
        # Faust creates its changelog and leader topics, with the factor `prepared_app` chose
        # for the other topics (kafka/broker.py). Faust's producer acks with all in-sync
        # replicas (acks=-1) by default.
        topic_replication_factor=settings.replication or 1,
        store="rocksdb://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        table_standby_replicas=settings.standby_replicas,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.session_timeout / 10,
        consumer_group_instance_id=settings.instance_id,
        web_port=settings.web_port,
        web_bind=settings.web_host,  # Faust binds 0.0.0.0 unless told
        web_host=settings.web_host,
        # Serve /counters/ and streamlearn's routes (serving/routes.py), none of Faust's own
        # pages: /table/ hands any key's pickled state to whoever asks, and /router/, /graph/
        # and the stats pages show the cluster's insides. Nothing here needs them.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        producer_max_request_size=4 * 1024 * 1024,
        # The intake hands over one batch per partition per fetch (outbox.py): let a
        # batch hold a whole fetch's predictions, within the broker's 1 MiB message limit.
        producer_max_batch_size=512 * 1024,
        producer_linger=0.005,
        consumer_max_fetch_size=4 * 1024 * 1024,
    )
    app.transport = Transport(app.conf.broker_consumer, app)  # see streamlearn/worker/transport.py
    app.outage = Outage(settings.broker, security=settings.security)  # type: ignore[attr-defined]
    app.processor = processor  # type: ignore[attr-defined]
    app.settings = settings  # type: ignore[attr-defined]

    # Subscribed, so Faust's assignor gives this worker partition p of both inputs and of the
    # changelog together; their records go to the intake, not through an agent (intake.py).
    app.topics.add(app.topic(topics.observations, topics.labels, **RAW_TOPIC))
    options = {"driver": "rocksdict"}
    table = app.tables.add(
        Table(app, name="state", partitions=settings.partitions, options=options, **RAW)
    )
    intake = app.intake = Intake(app, processor, settings)  # type: ignore[attr-defined]
    intake.table = table
    table.data.committed_offsets = lambda partitions: committed_inputs(
        app.consumer, topics, partitions
    )

    rebalances = app.rebalances = RebalanceLog(topics.observations)  # type: ignore[attr-defined]
    add_routes(app)  # /keys/, /metrics and the dashboard (streamlearn/serving/routes.py)

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        await intake.on_revoked({tp.partition for tp in revoked})
        rebalances.revoked()

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: Any, **kwargs: Any) -> None:
        rebalances.assigned(assigned)

    @app.on_rebalance_complete.connect
    async def on_recovered(app: faust.App, **kwargs: Any) -> None:
        # Next Faust resumes the source partitions and then the flow. The intake holds what it
        # fetches until the flow resumes; here every input partition goes back to its commit.
        inputs = (topics.observations, topics.labels)
        intake.on_resumed(await resume_from_committed(app.consumer, inputs))
        rebalances.completed()

    # The ready line and the counters come from the app, not from a Worker subclass, so that
    # `faust -A streamlearn.worker.app worker` logs them too. They are WARNING, not INFO, because
    # Faust's worker shows only WARNING and above unless told otherwise, and they are what an
    # operator watches.

    @app.task
    async def log_ready() -> None:
        # Faust starts an app's tasks once its tables are recovered, and not if it stops first.
        log.warning(
            "streamlearn worker ready in %.1fs: app %s, broker %s, model %s, %d partitions,"
            " web %s:%d, data dir %s",
            time.monotonic() - created_at,
            settings.app_id,
            settings.broker,
            ", ".join(learner.names),
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

    def _shutdown_loop(self) -> None:
        """After the stop: a worker that stopped by itself (`Intake.fatal`) says why in one
        `streamlearn: error: …` line and exits with that error's code."""
        super()._shutdown_loop()
        fatal = self.app.intake.fatal
        if fatal is not None:
            print(f"streamlearn: error: {fatal}", file=sys.stderr)
            raise SystemExit(fatal.exit_code)

    def _exit_now(self) -> None:
        log.warning(
            "shutdown still blocked after %.0fs (Faust stuck in a rebalance); exiting now, %s",
            SHUTDOWN_GRACE,
            "everything produced is flushed" if self.flushed else "as after a crash",
        )
        logging.shutdown()
        os._exit(0 if self.flushed else 1)


def __getattr__(name: str) -> Any:
    """`faust -A streamlearn.worker.app worker` finds `app`, built once from `STREAMLEARN_*`
    variables."""
    if name == "app":
        app = globals()["app"] = _app_from_env()  # Faust looks it up more than once
        return app
    raise AttributeError(name)


def _app_from_env() -> faust.App:
    """The app from `STREAMLEARN_*` variables; a bad one is one `streamlearn: error: …` line on
    stderr and exit code 2, as `streamlearn worker` reports it, instead of Faust's traceback."""
    from streamlearn.commands.cli import settings_from_env
    from streamlearn.commands.web import check_web_exposure

    try:
        settings = settings_from_env()
        settings.learner()  # local checks before the broker: their errors name them
        check_web_exposure(settings.web_host, settings.web_token)
        return prepared_app(settings)
    except click.ClickException as error:
        message = error.format_message()
    except StreamlearnError as error:
        message = str(error)
    print(f"streamlearn: error: {message}", file=sys.stderr)
    raise SystemExit(2)
