"""The `streamlearn` command line: a thin layer over the library.

Built on click because it gives every flag an environment variable (`STREAMLEARN_<NAME>`,
shown in `--help`) and lets `main` turn every user mistake into one line on stderr.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from streamlearn.broker import ensure_topics, require_broker
from streamlearn.core import DEFAULT_HORIZON, DEFAULT_MAX_PENDING
from streamlearn.errors import StreamlearnError
from streamlearn.events import DEFAULT_MAX_EVENT_BYTES
from streamlearn.local_kafka import DEFAULT_PORT, KAFKA_VERSION, LocalKafka, default_data_dir
from streamlearn.settings import Settings, Topics

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
    """A local single-node Apache Kafka (KRaft) on 127.0.0.1, for development and tests."""


port_option = click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    envvar="STREAMLEARN_KAFKA_PORT",
    show_envvar=True,
    help="Port of the broker's client listener.",
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
def start(port: int, data_dir: Path) -> None:
    """Start the broker (resolving its jars with Maven on first use); return once it answers."""
    broker = LocalKafka(port=port, data_dir=data_dir)
    current = broker.status()
    if current.running:
        click.echo(f"Kafka is already running: {current.describe()}")
        return
    with Console(stderr=True).status(f"starting Kafka {KAFKA_VERSION} on 127.0.0.1:{port} …"):
        status = broker.start()
    click.echo(f"Kafka is ready: {status.describe()}, log {broker.log_path}")


@kafka.command()
@kafka_dir_option
def stop(data_dir: Path) -> None:
    """Stop the broker: SIGTERM, then SIGKILL if it has not exited after 30 s."""
    if LocalKafka(data_dir=data_dir).stop():
        click.echo("Kafka stopped")
    else:
        click.echo(f"Kafka was not running (data dir {data_dir})")


@kafka.command()
@kafka_dir_option
def status(data_dir: Path) -> int:
    """Say whether the broker runs, with its pid, address and data dir (exit 3 if it does not)."""
    current = LocalKafka(data_dir=data_dir).status()
    click.echo(f"Kafka is {current.describe()}")
    return 0 if current.running else 3


def _option(name: str, **kwargs: Any) -> Callable:
    """A flag that also reads `STREAMLEARN_<NAME>` and shows its default and variable in --help."""
    env = "STREAMLEARN_" + name.lstrip("-").replace("-", "_").upper()
    return click.option(name, envvar=env, show_envvar=True, show_default=True, **kwargs)


def _compose(*decorators: Callable) -> Callable:
    def apply(function: Callable) -> Callable:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


broker_option = _option("--broker", default="localhost:9092", help="Kafka bootstrap HOST:PORT.")
topic_options = _compose(
    _option("--topic-prefix", default="", help="Prefix for all four topic names."),
    _option("--observations-topic", default=None, help="[default: PREFIX + observations]"),
    _option("--labels-topic", default=None, help="[default: PREFIX + labels]"),
    _option("--predictions-topic", default=None, help="[default: PREFIX + predictions]"),
    _option("--dead-letters-topic", default=None, help="[default: PREFIX + dead-letters]"),
)
app_options = _compose(
    broker_option,
    _option("--model", default="linear-regression", help="A preset name or module:factory."),
    _option("--app-id", default="streamlearn", help="Faust app id; workers with one id share."),
    _option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("streamlearn-data"),
        help="Where this worker keeps its RocksDB tables (one per worker).",
    ),
    _option("--partitions", type=click.IntRange(1, 1024), default=8, help="Partitions per topic."),
    _option("--web-port", type=click.IntRange(1, 65535), default=6066, help="HTTP port."),
    topic_options,
    _option(
        "--horizon",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_HORIZON,
        help="Seconds of event time a pending observation or early label waits.",
    ),
    _option("--max-pending", type=click.IntRange(1), default=DEFAULT_MAX_PENDING,
            help="Pending entries kept per key, whatever the horizon."),
    _option("--max-event-bytes", type=click.IntRange(64), default=DEFAULT_MAX_EVENT_BYTES,
            help="Larger event values go to the dead letters."),
    _option("--standby-replicas", type=click.IntRange(0), default=1,
            help="Standby copies of each table partition on other workers."),
    _option("--session-timeout", type=click.FloatRange(6, 300), default=30.0,
            help="Seconds before a silent worker's partitions go to the others."),
)  # fmt: skip


def topics_from(params: dict[str, Any]) -> Topics:
    """The topic names from `--topic-prefix` and the per-topic flags."""
    topics = Topics.with_prefix(params["topic_prefix"])
    return Topics(
        params["observations_topic"] or topics.observations,
        params["labels_topic"] or topics.labels,
        params["predictions_topic"] or topics.predictions,
        params["dead_letters_topic"] or topics.dead_letters,
    )


def settings_from(params: dict[str, Any]) -> Settings:
    """`Settings` from the parsed values of `app_options`."""
    return Settings(
        broker=params["broker"],
        model=params["model"],
        app_id=params["app_id"],
        data_dir=params["data_dir"],
        partitions=params["partitions"],
        web_port=params["web_port"],
        topics=topics_from(params),
        horizon=params["horizon"],
        max_pending=params["max_pending"],
        max_event_bytes=params["max_event_bytes"],
        standby_replicas=params["standby_replicas"],
        session_timeout=params["session_timeout"],
    )


def settings_from_env() -> Settings:
    """`Settings` from `STREAMLEARN_*` variables alone (for `faust -A agents.app worker`)."""
    return settings_from(worker.make_context("worker", []).params)


async def prepare_topics(settings: Settings) -> None:
    """Fail fast on an unreachable broker; create the four topics with one partition count."""
    await require_broker(settings.broker)
    await ensure_topics(
        settings.broker, dict.fromkeys(settings.topics.names(), settings.partitions)
    )


@cli.command()
@app_options
@_option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
def worker(log_level: str, **params: Any) -> None:
    """Run a Faust worker of the app: predict on observations, learn from labels."""
    from agents.app import Worker, create_app

    settings = settings_from(params)
    asyncio.run(prepare_topics(settings))
    app = create_app(settings)
    asyncio.set_event_loop(asyncio.new_event_loop())
    Worker(app, settings, loglevel=log_level, quiet=True).execute_from_commandline()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
