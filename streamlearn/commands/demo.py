"""`streamlearn demo`: from nothing to live per-station learning, then a clean stop.

It uses a broker that answers at `--broker`, or starts a local one (and stops it at the end);
starts a worker subprocess; streams the bundled bike-stations data with each label an hour of
event time late; shows progress and per-station error live; and stops all it started, also on
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console, Group
from rich.live import Live
from river import metrics

from streamlearn.commands.produce import ProduceReport, produce_events
from streamlearn.commands.progress import event_progress
from streamlearn.commands.report import metric_table
from streamlearn.datasets.bikes import bike_stream
from streamlearn.errors import KafkaError
from streamlearn.kafka.broker import prepare_topics, probe
from streamlearn.kafka.local import LocalKafka, free_port
from streamlearn.settings import Topics
from streamlearn.source import Columns, to_events
from streamlearn.testing import WorkerProcess

LABEL_DELAY = 3600.0  # the number of bikes at a station is known an hour later


@dataclass(frozen=True)
class DemoOptions:
    broker: str = "localhost:9092"
    stations: int = 20
    days: int = 7
    models: tuple[str, ...] = ("bikes",)  # candidates per key; the best one serves
    rate: float | None = 400.0
    partitions: int = 8
    out: Path = Path("streamlearn-demo")


class Scoreboard:
    """Per-station MAE of the predictions seen so far, against the known truth; a live table."""

    def __init__(self, truth: dict[tuple[str, str], float]) -> None:
        self.truth = truth
        self.per_key: dict[str, metrics.MAE] = {}
        self.learned: dict[str, int] = {}
        self.overall = metrics.MAE()
        self.by_day: dict[int, metrics.MAE] = {}
        self.seen = 0

    def add(self, prediction: dict, day: int) -> None:
        y = self.truth[(prediction["key"], prediction["id"])]
        for metric in (self.per_key.setdefault(prediction["key"], metrics.MAE()), self.overall):
            metric.update(y, prediction["y_pred"])
        self.by_day.setdefault(day, metrics.MAE()).update(y, prediction["y_pred"])
        self.learned[prediction["key"]] = prediction["n_learned"]
        self.seen += 1

    def __rich__(self) -> Any:
        rows = [(key, self.learned[key], metric) for key, metric in self.per_key.items()]
        return metric_table(rows, "bikes available: error per station", 5, self.overall)


def run_demo(options: DemoOptions, console: Console) -> int:
    """Run the demo; 0 when it completed, 130 when interrupted."""
    started = time.monotonic()
    options.out.mkdir(parents=True, exist_ok=True)
    run = datetime.now().strftime("demo-%Y%m%d-%H%M%S")
    topics = Topics.with_prefix(run + ".")
    scratch = Path(tempfile.mkdtemp(prefix="streamlearn-demo-"))
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with contextlib.ExitStack() as stop_all:
            stop_all.callback(shutil.rmtree, scratch, ignore_errors=True)
            own_kafka = _ensure_broker(options.broker, scratch, stop_all, console)
            asyncio.run(prepare_topics(options.broker, topics, options.partitions))
            console.print(f"starting a worker (model {', '.join(options.models)}) …")
            worker = WorkerProcess(
                options.broker, scratch / "worker", free_port(), topics, f"streamlearn-{run}",
                model=",".join(options.models), partitions=options.partitions,
                log_path=options.out / "worker.log",
            )  # fmt: skip
            stop_all.callback(worker.stop)
            worker.start()
            dashboard = f"http://127.0.0.1:{worker.web_port}/dashboard"
            console.print(f"dashboard: {dashboard} (open it while the demo runs)")
            report, board = asyncio.run(_stream_and_watch(options, topics, console))
            counters = worker.counters()
            _summary(console, options, report, board, counters, topics, own_kafka, started)
            return 130 if report.interrupted else 0
    except KeyboardInterrupt:
        console.print("streamlearn demo: interrupted; stopped everything it started")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _ensure_broker(
    broker: str, scratch: Path, stop_all: contextlib.ExitStack, console: Console
) -> bool:
    """Use the broker at `broker` if it answers; otherwise start a local one there."""
    if asyncio.run(probe(broker, timeout=3.0)):
        console.print(f"using the Kafka broker at {broker}")
        return False
    host, _, port = broker.rpartition(":")
    if host not in ("localhost", "127.0.0.1") or not port.isdigit():
        raise KafkaError(f"no Kafka broker answers at {broker}, and it is not a local address")
    console.print(f"no broker at {broker}: starting a local Kafka there …")
    kafka = LocalKafka(port=int(port), data_dir=scratch / "kafka")
    stop_all.callback(kafka.stop)
    kafka.start()
    return True


async def _stream_and_watch(
    options: DemoOptions, topics: Topics, console: Console
) -> tuple[ProduceReport, Scoreboard]:
    rows = list(bike_stream(stations=options.stations, days=options.days))
    truth = {(row["station"], row["moment"]): row["bikes"] for row in rows}  # the moment is the id
    first = datetime.fromisoformat(rows[0]["moment"])
    day_of = {r["moment"]: (datetime.fromisoformat(r["moment"]) - first).days for r in rows}
    board = Scoreboard(truth)
    events = to_events(rows, Columns("station", "bikes", time="moment"), LABEL_DELAY)
    progress = event_progress()
    consumer = AIOKafkaConsumer(
        topics.predictions, bootstrap_servers=options.broker, auto_offset_reset="earliest"
    )
    await consumer.start()
    with (
        open(options.out / "predictions.jsonl", "wb") as sink,
        Live(Group(progress, board), console=console, refresh_per_second=4),
    ):
        watching = progress.add_task("predictions", total=len(rows))

        async def watch() -> None:
            while board.seen < len(rows):
                batch = await consumer.getmany(timeout_ms=200)
                for record in (r for records in batch.values() for r in records):
                    prediction = orjson.loads(record.value)
                    board.add(prediction, day_of[prediction["id"]])
                    sink.write(record.value + b"\n")
                    progress.advance(watching)

        watcher = asyncio.create_task(watch())
        try:
            report = await produce_events(
                options.broker, topics, events, options.rate, 2 * len(rows), progress
            )
            if not report.interrupted:
                await asyncio.wait_for(asyncio.shield(watcher), timeout=120)
        finally:
            watcher.cancel()
            await consumer.stop()
    return report, board


def _summary(
    console: Console,
    options: DemoOptions,
    report: ProduceReport,
    board: Scoreboard,
    counters: dict[str, int],
    topics: Topics,
    own_kafka: bool,
    started: float,
) -> None:
    days = [f"day {d + 1}: {m.get():.2f}" for d, m in sorted(board.by_day.items())]
    console.print(
        f"\nstreamlearn demo: {options.stations} stations x {options.days} days, model"
        f" {', '.join(options.models)}\n"
        f"sent {report.observations} observations and {report.labels} labels;"
        f" received {board.seen} predictions; the worker learned {counters['learned']}\n"
        f"MAE of bikes available, over all predictions: {board.overall.get():.2f}"
        f" ({', '.join(days[:1] + days[-1:])})\n"
        f"predictions: {options.out / 'predictions.jsonl'} (topic {topics.predictions})\n"
        f"worker log: {options.out / 'worker.log'}"
    )
    if own_kafka:
        console.print("the local Kafka started for the demo has been stopped")
    else:
        console.print(f"tail them: streamlearn tail --predictions-topic {topics.predictions}")
    console.print(f"wall time: {time.monotonic() - started:.1f}s")
