"""The `streamlearn` command line: a thin layer over the library.

Built on click because it gives every flag an environment variable (`STREAMLEARN_<NAME>`,
shown in `--help`) and lets `main` turn every user mistake into one line on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from streamlearn.commands.demo import DemoOptions, run_demo
from streamlearn.commands.options import (
    WATCH_FLAGS,
    app_options,
    broker_timeout_option,
    column_options,
    drift_from,
    fault_option,
    kafka_options,
    model_option,
    option,
    replication_option,
    security_from,
    selection_from,
    selection_options,
    settings_from,
    threshold_from,
    topic_options,
    topics_from,
    watch_args,
    watch_options,
)
from streamlearn.commands.produce import produce_events
from streamlearn.commands.progress import event_progress
from streamlearn.commands.replay import replay_events
from streamlearn.commands.report import print_replay
from streamlearn.commands.tail import tail
from streamlearn.commands.web import check_web_exposure, check_web_port
from streamlearn.errors import ConfigError, StreamlearnError
from streamlearn.kafka.broker import prepare_topics, probe
from streamlearn.kafka.local import (
    DEFAULT_PORT,
    KAFKA_VERSION,
    VERSIONS,
    LocalCluster,
    default_data_dir,
)
from streamlearn.kafka.local.cluster import MAX_BROKERS
from streamlearn.kafka.local.versions import VERSION_ENV
from streamlearn.learning.core import Learner
from streamlearn.learning.events import Rejected
from streamlearn.learning.models import load_candidates
from streamlearn.learning.state import dumps_state
from streamlearn.settings import Settings, Topics
from streamlearn.snapshot import (
    SECRET_ENV,
    read_snapshot,
    reseal,
    seal,
    secret_from_env,
    send_states,
    write_snapshot,
)
from streamlearn.source import Columns, RowReader, check_columns, parse_delay, to_events

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user mistakes become one `streamlearn: error: …` line and a non-zero code."""
    try:
        result = cli.main(args=argv, prog_name="streamlearn", standalone_mode=False)
    except click.ClickException as error:
        hint = f" (see `{error.ctx.command_path} --help`)" if getattr(error, "ctx", None) else ""
        click.echo(f"streamlearn: error: {error.format_message()}{hint}", err=True)
        return error.exit_code
    except StreamlearnError as error:
        click.echo(f"streamlearn: error: {error}", err=True)
        return error.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("streamlearn: interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="streamlearn")
def cli() -> None:
    """Online machine learning on Kafka: one model per key, predict on every observation,
    learn when the label arrives."""


@cli.group()
def kafka() -> None:
    """A local Apache Kafka (KRaft) on 127.0.0.1, one node or a cluster, for development and
    tests."""


port_option = click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    envvar="STREAMLEARN_KAFKA_PORT",
    show_envvar=True,
    help="Port of the broker's client listener (node 1's in a cluster)."
    f"  [default: as the data dir recorded, else {DEFAULT_PORT}]",
)
kafka_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_data_dir,
    show_default=str(default_data_dir()),
    envvar="STREAMLEARN_KAFKA_DATA_DIR",
    show_envvar=True,
    help="Where the broker keeps its logs, state and pid.",
)


@kafka.command()
@port_option
@kafka_dir_option
@click.option(
    "--brokers",
    type=click.IntRange(1, MAX_BROKERS),
    default=None,
    envvar="STREAMLEARN_KAFKA_BROKERS",
    show_envvar=True,
    help="Nodes in the cluster, each broker and controller; 3 gives replication factor 3 and"
    " min.insync.replicas 2.  [default: as the data dir recorded, else 1]",
)
@click.option(
    "--kafka-version",
    type=click.Choice(VERSIONS),
    default=None,
    envvar=VERSION_ENV,
    show_envvar=True,
    help=f"Kafka version to run.  [default: as the data dir recorded, else {KAFKA_VERSION}]",
)
@click.option(
    "--secure-listeners/--no-secure-listeners",
    default=None,
    envvar="STREAMLEARN_KAFKA_SECURE_LISTENERS",
    show_envvar=True,
    help="Also listen with SASL_SSL (PLAIN, SCRAM-SHA-256/512) and SSL with client certificates,"
    " generating a CA, certificates and a user in the data dir.",
)
def start(
    port: int | None,
    data_dir: Path,
    brokers: int | None,
    kafka_version: str | None,
    secure_listeners: bool | None,
) -> None:
    """Start the broker or cluster (resolving its jars with Maven on first use); return once
    every node answers."""
    if port is None and not LocalCluster(data_dir).recorded:
        port = DEFAULT_PORT
    cluster = LocalCluster(
        data_dir, brokers=brokers, kafka_version=kafka_version, security=secure_listeners, port=port
    )
    if cluster.running:
        click.echo(f"Kafka is already running: {_describe(cluster)}")
        _echo_secure_listeners(cluster)
        return
    what = f"on {cluster.bootstrap}" if cluster.brokers == 1 else f"({cluster.brokers} nodes)"
    # SIGTERM like Ctrl-C: the start stops the nodes it launched before the CLI exits.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with Console(stderr=True).status(f"starting Kafka {cluster.kafka_version} {what} …"):
            cluster.start()
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo(f"Kafka {cluster.kafka_version} is ready: {_describe(cluster, logs=True)}")
    _echo_secure_listeners(cluster)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _describe(cluster: LocalCluster, logs: bool = False) -> str:
    """One line for a single node (as `kafka status` has always said it); a line per node
    of a cluster."""
    nodes = cluster.status()
    if cluster.brokers == 1:
        return nodes[0].describe() + (f", log {cluster.log_path(1)}" if logs else "")
    if not any(node.running for node in nodes):
        return f"not running ({cluster.brokers} nodes, data dir {cluster.data_dir})"
    lines = [f"{cluster.brokers} nodes, bootstrap {cluster.bootstrap}"]
    for node in nodes:
        log = f", log {cluster.log_path(node.node)}" if logs and node.running else ""
        lines.append(f"  node {node.node}: {node.describe()}{log}")
    return "\n".join(lines)


def _echo_secure_listeners(cluster: LocalCluster) -> None:
    """Where the secure listeners are and what a client needs to use them."""
    credentials = cluster.credentials
    if credentials is None:
        return
    listeners = cluster.listeners
    click.echo(
        "\n".join(
            [
                f"SASL_SSL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512): {listeners['SASL_SSL']}",
                f"SSL (client certificate required): {listeners['SSL']}",
                f"user {credentials.user}, password in {credentials.password_file}",
                f"CA {credentials.ca_file}; client certificate {credentials.client_cert},"
                f" key {credentials.client_key}",
                f"`source {cluster.env_path}` points streamlearn at the SASL_SSL listener",
            ]
        )
    )


@kafka.command()
@kafka_dir_option
def stop(data_dir: Path) -> None:
    """Stop the broker or every node of the cluster: SIGTERM, then SIGKILL after 30 s."""
    cluster = LocalCluster(data_dir)
    if cluster.stop():
        click.echo(
            "Kafka stopped" + ("" if cluster.brokers == 1 else f" ({cluster.brokers} nodes)")
        )
    else:
        click.echo(f"Kafka was not running (data dir {data_dir})")


@kafka.command()
@port_option
@kafka_dir_option
def status(port: int | None, data_dir: Path) -> int:
    """Say whether the broker runs, with its pid, address and data dir (exit 3 unless every
    node runs).

    A broker runs "from" a data dir; when none does, it also says whether one started elsewhere
    answers on --port, so a forgotten --data-dir does not read as "no broker at all"."""
    cluster = LocalCluster(data_dir)
    nodes = cluster.status()
    if all(node.running for node in nodes):
        click.echo(f"Kafka is {'' if cluster.brokers == 1 else 'running: '}{_describe(cluster)}")
        return 0
    if any(node.running for node in nodes):
        click.echo(f"Kafka is partly running: {_describe(cluster)}")
        return 3
    address = f"127.0.0.1:{port or DEFAULT_PORT}"
    if asyncio.run(probe(address, timeout=2.0)):
        click.echo(
            f"Kafka is not running from data dir {data_dir}, but a broker answers on {address}"
            " (started with another --data-dir?)"
        )
    else:
        click.echo(f"Kafka is {_describe(cluster)}")
    return 3


def settings_from_env() -> Settings:
    """`Settings` from `STREAMLEARN_*` variables alone, for
    `faust -A streamlearn.worker.app worker`."""
    return settings_from(worker.make_context("worker", []).params)


@cli.command()
@app_options
@option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
def worker(log_level: str, **params: Any) -> None:
    """Run a Faust worker of the app: predict on observations, learn from labels."""
    from streamlearn.worker.app import Worker, prepared_app

    settings = settings_from(params)
    settings.learner()  # local checks before the broker: their errors name them
    check_web_port(settings.web_host, settings.web_port)
    check_web_exposure(settings.web_host, settings.web_token)
    app = prepared_app(settings)
    Worker(app, loglevel=log_level, quiet=True).execute_from_commandline()


def _rows_and_columns(params: dict[str, Any]) -> tuple[RowReader, Columns, float]:
    """The file reader, its checked columns and the label delay, from `column_options`."""
    reader = RowReader(params["file"])
    ids = tuple(name.strip() for name in (params["id_column"] or "").split(",") if name.strip())
    columns = Columns(params["key"], params["target"], ids, params["time_column"])
    check_columns(reader, columns)
    delay = parse_delay(params["label_delay"], by_time=columns.time is not None)
    return reader, columns, delay


@cli.command()
@column_options
@kafka_options
@replication_option
@topic_options
@option("--partitions", type=click.IntRange(1, 1024), default=8, help="Partitions of new topics.")
@option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
        help="Events per second [default: as fast as possible].")  # fmt: skip
@option("--limit", type=click.IntRange(1), default=None, help="Stop after this many rows.")
@broker_timeout_option
def produce(
    broker: str,
    partitions: int,
    replication_factor: int | None,
    rate: float | None,
    limit: int | None,
    broker_timeout: float,
    **params: Any,
) -> int:
    """Send the rows of a CSV or JSON Lines file (gzip too) as observations and labels."""
    security = security_from(params)
    reader, columns, delay = _rows_and_columns(params)
    topics = topics_from(params)
    asyncio.run(
        prepare_topics(
            broker, topics, partitions, security=security, replication=replication_factor
        )
    )
    rows = itertools.islice(reader, limit) if limit else reader
    events = to_events(rows, columns, delay, reader.malformed)
    report = asyncio.run(
        produce_events(
            broker, topics, events, rate, security=security, broker_timeout=broker_timeout
        )
    )
    if report.sent == 0 and reader.malformed and not report.interrupted:
        first = reader.malformed[0]
        raise ConfigError(f"every row of {reader.path} was malformed (first: {first})")
    click.echo(
        f"sent {report.observations} observations to {topics.observations} and"
        f" {report.labels} labels to {topics.labels} at {broker}"
    )
    if reader.malformed:
        click.echo(reader.summary(), err=True)
    if not columns.id and columns.time is None:
        click.echo(
            "note: the event ids are row numbers (no --id or --time); another file sent to these"
            " topics repeats them, and the worker takes its rows for duplicates",
            err=True,
        )
    if report.interrupted:
        click.echo(f"streamlearn: interrupted after {report.sent} events", err=True)
        return 130
    return 0


@cli.command()
@column_options
@model_option("linear-regression")
@selection_options
@watch_options
@option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
        help="Write the predictions here as JSON lines.")  # fmt: skip
@option("--show", type=click.IntRange(1), default=5, help="How many worst and best keys to show.")
@option("--save", type=click.Path(path_type=Path, dir_okay=False), default=None,
        help="Write every key's final state here, sealed with STREAMLEARN_STATE_SECRET, for"
             " `streamlearn load`.")  # fmt: skip
def replay(
    models: tuple[str, ...], out: Path | None, show: int, save: Path | None, **params: Any
) -> None:
    """Progressive validation over a file, offline: the worker's own code, without Kafka."""
    secret = secret_from_env("replay --save") if save else None  # before, not after the work
    reader, columns, delay = _rows_and_columns(params)
    learner = Learner(
        load_candidates(models), selection=selection_from(params),
        threshold=threshold_from(params), drift=drift_from(params),
    )  # fmt: skip
    if learner.detector and columns.target is not None:
        raise ConfigError(
            f"--target {columns.target}: an anomaly detector learns from observations alone;"
            " leave --target out (the column then stays a feature)"
        )
    events = to_events(reader, columns, delay, reader.malformed)
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(open(out, "wb")) if out else None
        progress = stack.enter_context(event_progress())
        task = progress.add_task("replaying", total=None)
        result = replay_events(
            events,
            learner,
            on_prediction=(lambda line: sink.write(line + b"\n")) if sink else None,
            on_event=lambda: progress.advance(task),
        )
    print_replay(result, show, reader, out, drift=learner.drift.enabled)
    if result.counters["learned"] == 0 and (reader.malformed or result.dead_letters):
        labels = [d["error"] for d in result.dead_letters if d["topic"] == Topics().labels]
        first = (labels or [d["error"] for d in result.dead_letters] or reader.malformed)[0]
        raise ConfigError(f"nothing was learned: every label was rejected (first: {first})")
    if save is not None:
        names = learner.names
        sealed = (
            (key.encode(), seal(secret, key.encode(), names, dumps_state(state)))
            for key, state in result.states.items()
        )
        click.echo(f"saved {write_snapshot(save, sealed)} key states to {save}")


@cli.command()
@click.argument("snapshot", type=click.Path(path_type=Path, dir_okay=False))
@kafka_options
@topic_options
@option("--replace", is_flag=True, default=False,
        help="Replace the state of keys that already have one [default: such keys keep theirs,"
             " and their snapshot state is dead-lettered as key-has-state].")  # fmt: skip
def load(snapshot: Path, broker: str, replace: bool, **params: Any) -> None:
    """Warm-start a running app: send each key's state from a `replay --save` snapshot to the
    app's labels topic, where the worker that owns the key makes it the key's state."""
    security = security_from(params)
    secret = secret_from_env("load")
    entries = []
    for key, sealed in read_snapshot(snapshot):
        try:
            entries.append((key, reseal(secret, key, sealed, replace)))
        except Rejected:
            raise ConfigError(
                f"the snapshot's seal for key {key.decode(errors='replace')!r} does not match"
                f" {SECRET_ENV}: it was saved with another secret, or changed since"
            ) from None
    topic = topics_from(params).labels
    sent = asyncio.run(send_states(broker, topic, entries, security=security))
    click.echo(
        f"sent {sent} key states to {topic} at {broker}; workers count them as loaded (see"
        " /counters/), or dead-letter those they refuse"
    )


@cli.command()
@click.argument("snapshot", type=click.Path(path_type=Path, dir_okay=False))
@kafka_options
@option("--app-id", default=Settings.app_id, help="The app whose states to export.")
@topic_options
@model_option("linear-regression")
@click.option(
    "--key", "keys", multiple=True, help="Export only this key (repeatable) [default: all]."
)
def export(snapshot: Path, broker: str, app_id: str, keys: tuple[str, ...], **params: Any) -> None:
    """Write every key's state of a running app (as of its last checkpoint) to a snapshot, for
    `streamlearn load`, without stopping the workers. --model names the app's candidates."""
    from streamlearn.worker.export import checkpointed_states

    security = security_from(params)
    secret = secret_from_env("export")
    names = tuple(candidate.name for candidate in load_candidates(params["models"]))
    wanted = [key.encode() for key in keys]
    states = asyncio.run(
        checkpointed_states(broker, app_id, topics_from(params), wanted, security=security)
    )
    sealed = ((key, seal(secret, key, names, state)) for key, state in states.items())
    click.echo(f"exported {write_snapshot(snapshot, sealed)} key states of {app_id} to {snapshot}")


@cli.command()
@kafka_options
@replication_option
@option("--stations", type=click.IntRange(1, 1000), default=20, help="Bike stations (keys).")
@option("--days", type=click.IntRange(1, 365), default=7, help="Days of hourly data.")
@model_option("bikes")
@option("--rate", type=click.FloatRange(min=0, min_open=True), default=400.0,
        help="Events per second.")  # fmt: skip
@option("--partitions", type=click.IntRange(1, 1024), default=8, help="Partitions per topic.")
@option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("streamlearn-demo"),
        help="Where the predictions and the worker log are written.")  # fmt: skip
@watch_options
@fault_option
def demo(**params: Any) -> int:
    """The embedded default: local Kafka, a worker, a bike-stations stream, live metrics."""
    # A bad --model, or flags that do not suit it, fail here, before Kafka starts.
    learner = Learner(
        load_candidates(params["models"]), threshold=threshold_from(params),
        drift=drift_from(params),
    )  # fmt: skip
    worker_args = watch_args(params)
    for name in WATCH_FLAGS:
        del params[name]
    security = security_from(params)
    options = DemoOptions(
        **params, security=security, detector=learner.detector, worker_args=worker_args
    )
    return run_demo(options, Console())


cli.add_command(tail)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
