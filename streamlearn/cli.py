"""The `streamlearn` command line: a thin layer over the library.

Built on click because it gives every flag an environment variable (`STREAMLEARN_<NAME>`,
shown in `--help`) and lets `main` turn every user mistake into one line on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from streamlearn.errors import StreamlearnError
from streamlearn.local_kafka import DEFAULT_PORT, KAFKA_VERSION, LocalKafka, default_data_dir

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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
