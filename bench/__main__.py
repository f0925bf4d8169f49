"""`python -m bench`: measure streamlearn against its physical limit and its peers in one run.

Starts what it needs (a local Kafka through the project's `LocalKafka`, unless `--broker` names
one; `streamlearn worker` subprocesses; one process per peer drain), prints one table per
configuration, optionally writes the medians as JSON, and stops everything it started, also on
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bench.report import environment, medians, print_header, table, write_json
from bench.suite import Config, Result, run_all, suite
from streamlearn.kafka.local import LocalKafka, kafka_for

QUICK = Config(keys=20, pairs=1_000, partitions=2, repeats=1, e2e_repeats=1)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--events",
    "pairs",
    type=click.IntRange(100),
    default=Config.pairs,
    show_default=True,
    help="Pairs (an observation and its label) per configuration.",
)
@click.option("--keys", type=click.IntRange(1), default=Config.keys, show_default=True)
@click.option(
    "--model",
    default=Config.model,
    show_default=True,
    help="Model preset; bikes gets the bike-station stream, others the linear one.",
)
@click.option(
    "--label-delay",
    type=click.IntRange(0),
    default=Config.label_delay,
    show_default=True,
    help="Each label comes after this many more observations.",
)
@click.option("--partitions", type=click.IntRange(1), default=Config.partitions, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=Config.workers,
    show_default=True,
    help="Scale-out: also drain with 2 .. WORKERS workers (1: no scale-out).",
)
@click.option(
    "--repeats",
    type=click.IntRange(1),
    default=Config.repeats,
    show_default=True,
    help="Runs of the in-process limit and naive store (medians reported).",
)
@click.option(
    "--e2e-repeats",
    type=click.IntRange(1),
    default=Config.e2e_repeats,
    show_default=True,
    help="One-worker drains (about a minute each at the defaults; medians reported).",
)
@click.option(
    "--peers/--no-peers",
    default=Config.peers,
    show_default=True,
    help="Also drain the backlog with the Python peers (an aiokafka loop; Quix Streams if the"
    " bench extra is installed) after each one-worker drain.",
)
@click.option(
    "--suite",
    "suite_name",
    type=click.Choice(["single", "default"]),
    default="single",
    show_default=True,
    help="default: this configuration, then bikes and 100,000 keys once each.",
)
@click.option(
    "--quick",
    is_flag=True,
    help="A tiny configuration (20 keys, 1,000 pairs, 2 partitions, 1 run each).",
)
@click.option(
    "--budget",
    type=click.FloatRange(60),
    default=480.0,
    show_default=True,
    help="Seconds for the whole suite: configurations after the first get fewer pairs"
    " if the pace measured on the first says they would not fit (the default leaves room"
    " for noise under the 10-minute bound).",
)
@click.option("--broker", default=None, help="Use the Kafka at HOST:PORT instead of starting one.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the medians per configuration to this file.",
)
def main(
    quick: bool,
    suite_name: str,
    budget: float,
    broker: str | None,
    json_path: Path | None,
    **flags: Any,
) -> None:
    """Pairs per second of the in-process limit, a naive pickle-per-event store, streamlearn
    end to end and its Python peers, with latency at half load, memory per key and scale-out."""
    base = replace(QUICK, peers=flags["peers"]) if quick else replace(Config(), **flags)
    # aiokafka warns while a topic just created reaches its metadata; it retries by itself.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 132)
    env = environment(broker)
    print_header(console, env)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    started = time.perf_counter()
    try:
        rows = _run_all(suite(base, suite_name), broker, budget, console)
    except KeyboardInterrupt:
        console.print("bench: interrupted; stopped the workers and the broker it started")
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    seconds = time.perf_counter() - started
    console.print(f"wall time: {seconds:.0f} s ({seconds / 60:.1f} min)")
    if json_path is not None:
        write_json(json_path, env, rows, seconds)
        console.print(f"medians written to {json_path}")


def _run_all(
    configs: list[Config], external: str | None, budget: float, console: Console
) -> list[dict]:
    """Run the configurations on one broker, printing each table as soon as it is done."""
    rows = []

    def say(text: str) -> None:
        """Progress, as plain text ("[bench]" is no markup), logged where `say` was called."""
        console.log(text, markup=False, _stack_offset=2)

    def done(result: Result) -> None:
        row = medians(result)
        rows.append(row)
        console.print(table(result, row))

    with contextlib.ExitStack() as stop_all:
        scratch = Path(stop_all.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        if external is None:
            console.log("starting a local Kafka")
        bootstrap = stop_all.enter_context(kafka_for(external, scratch / "kafka"))
        broker_pid = None if external else LocalKafka(data_dir=scratch / "kafka").status().pid
        run_all(configs, bootstrap, scratch, budget, say, done, broker_pid)
    return rows


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
