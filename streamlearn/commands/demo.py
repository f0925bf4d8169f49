"""`streamlearn demo`: from nothing to live per-station learning, then a clean stop.

It uses a broker that answers at `--broker`, or starts a local one (and stops it at the end);
starts a worker subprocess; streams the bundled bike-stations data with each label an hour of
event time late; shows progress and per-station error live; and stops all it started, also on
Ctrl-C or SIGTERM.

With an anomaly detector (`--model bikes-anomaly`) it streams observations only, with the count
of bikes as a feature, and shows instead how soon each injected `--fault` was flagged and how
many observations outside the faults were flagged too (false alarms).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from river import metrics

from streamlearn.commands.produce import ProduceReport, produce_events
from streamlearn.commands.progress import event_progress
from streamlearn.commands.report import metric_table
from streamlearn.datasets.bikes import Fault, bike_stream
from streamlearn.errors import KafkaError
from streamlearn.kafka.broker import prepare_topics, probe, require_broker
from streamlearn.kafka.local import LocalKafka, free_port
from streamlearn.kafka.security import PLAINTEXT, Security
from streamlearn.settings import Topics
from streamlearn.source import Columns, to_events
from streamlearn.testing import WorkerProcess

LABEL_DELAY = 3600.0  # the number of bikes at a station is known an hour later
ONE_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class DemoOptions:
    broker: str = "localhost:9092"
    security: Security = PLAINTEXT
    replication_factor: int | None = None  # of the topics it creates (None: as broker.py says)
    stations: int = 20
    days: int = 7
    models: tuple[str, ...] = ("bikes",)  # candidates per key; the best one serves
    rate: float | None = 400.0
    partitions: int = 8
    out: Path = Path("streamlearn-demo")
    faults: tuple[Fault, ...] = ()  # stations whose counter breaks for a while
    detector: bool = False  # the model is an anomaly detector: no labels, a `FaultBoard`
    worker_args: tuple[str, ...] = ()  # more flags for the worker (threshold, drift)


class Scoreboard:
    """Per-station MAE of the predictions seen so far, against the known truth; a live table."""

    def __init__(self, truth: dict[tuple[str, str], float]) -> None:
        self.truth = truth
        self.per_key: dict[str, metrics.MAE] = {}
        self.learned: dict[str, int] = {}
        self.overall = metrics.MAE()
        self.by_day: dict[int, metrics.MAE] = {}
        self.seen = 0

    def add(self, prediction: dict, hour: int) -> None:
        """Score a prediction made `hour` hours after the stream's start."""
        day = hour // 24
        y = self.truth[(prediction["key"], prediction["id"])]
        for metric in (self.per_key.setdefault(prediction["key"], metrics.MAE()), self.overall):
            metric.update(y, prediction["y_pred"])
        self.by_day.setdefault(day, metrics.MAE()).update(y, prediction["y_pred"])
        self.learned[prediction["key"]] = prediction["n_learned"]
        self.seen += 1

    def __rich__(self) -> Any:
        rows = [(key, self.learned[key], metric) for key, metric in self.per_key.items()]
        return metric_table(rows, "bikes available: error per station", 5, self.overall)

    def summary(self) -> str:
        days = [f"day {d + 1}: {m.get():.2f}" for d, m in sorted(self.by_day.items())]
        return (
            f"MAE of bikes available, over all predictions: {self.overall.get():.2f}"
            f" ({', '.join(days[:1] + days[-1:])})"
        )


class FaultBoard:
    """How an anomaly detector's flags meet the injected faults: per fault, the hours from its
    start to its first flag and how many of its hours were flagged; and the false alarms."""

    def __init__(self, faults: tuple[Fault, ...]) -> None:
        self.faults = faults
        self.first: dict[Fault, int] = {}
        self.hits: dict[Fault, int] = dict.fromkeys(faults, 0)
        self.false_alarms = 0
        self.normal = 0
        self.seen = 0

    def add(self, prediction: dict, hour: int) -> None:
        """Count a record made `hour` hours after the stream's start."""
        fault = next((f for f in self.faults if f.covers(prediction["key"], hour)), None)
        self.seen += 1
        if fault is None:
            self.normal += 1
            self.false_alarms += bool(prediction.get("is_anomaly"))
        elif prediction.get("is_anomaly"):
            self.hits[fault] += 1
            self.first.setdefault(fault, hour - fault.start)

    def __rich__(self) -> Any:
        table = Table(title="injected faults: flagged as anomalies?")
        for column in ("station", "from hour", "hours", "first flag after", "hours flagged"):
            table.add_column(column, justify="left" if column == "station" else "right")
        for fault in self.faults:
            first = "-" if fault not in self.first else f"{self.first[fault]} h"
            hits = str(self.hits[fault])
            table.add_row(fault.station, str(fault.start), str(fault.hours), first, hits)
        table.add_section()
        table.add_row(f"false alarms: {self.false_alarms} of {self.normal}", "", "", "", "")
        return table

    def summary(self) -> str:
        lines = [
            f"fault at {f.station} from hour {f.start} for {f.hours} h: "
            + (f"first flagged after {self.first[f]} h" if f in self.first else "never flagged")
            + f", {self.hits[f]} of its hours flagged"
            for f in self.faults
        ]
        lines.append(
            f"false alarms: {self.false_alarms} of {self.normal} observations outside the faults"
        )
        return "\n".join(lines)


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
            own_kafka = _ensure_broker(options.broker, options.security, scratch, stop_all, console)
            replication = asyncio.run(
                prepare_topics(
                    options.broker, topics, options.partitions,
                    security=options.security, replication=options.replication_factor,
                )
            )  # fmt: skip
            console.print(f"starting a worker (model {', '.join(options.models)}) …")
            worker = WorkerProcess(
                options.broker, scratch / "worker", free_port(), topics, f"streamlearn-{run}",
                model=",".join(options.models), partitions=options.partitions,
                log_path=options.out / "worker.log",
                extra_args=(*options.worker_args, "--replication-factor", str(replication)),
                env=options.security.env(),
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
    broker: str,
    security: Security,
    scratch: Path,
    stop_all: contextlib.ExitStack,
    console: Console,
) -> bool:
    """Use the broker at `broker` if it answers; otherwise start a local one there (plain
    text only: a secured broker that does not let us in is an error, said by require_broker)."""
    if asyncio.run(probe(broker, timeout=3.0, security=security)):
        console.print(f"using the Kafka broker at {broker} ({security.describe()})")
        return False
    host, _, port = broker.rpartition(":")
    if security != PLAINTEXT:
        asyncio.run(require_broker(broker, security=security))
    if host not in ("localhost", "127.0.0.1") or not port.isdigit():
        raise KafkaError(f"no Kafka broker answers at {broker}, and it is not a local address")
    console.print(f"no broker at {broker}: starting a local Kafka there …")
    kafka = LocalKafka(port=int(port), data_dir=scratch / "kafka")
    stop_all.callback(kafka.stop)
    kafka.start()
    return True


async def _stream_and_watch(
    options: DemoOptions, topics: Topics, console: Console
) -> tuple[ProduceReport, Scoreboard | FaultBoard]:
    rows = list(bike_stream(stations=options.stations, days=options.days, faults=options.faults))
    truth = {(row["station"], row["moment"]): row["bikes"] for row in rows}  # the moment is the id
    first = datetime.fromisoformat(rows[0]["moment"])
    hour_of = {r["moment"]: (datetime.fromisoformat(r["moment"]) - first) // ONE_HOUR for r in rows}
    if options.detector:  # observations only: the count is a feature, there is no label
        board: Scoreboard | FaultBoard = FaultBoard(options.faults)
        events = to_events(rows, Columns("station", None, time="moment"))
    else:
        board = Scoreboard(truth)
        events = to_events(rows, Columns("station", "bikes", time="moment"), LABEL_DELAY)
    progress = event_progress()
    consumer = AIOKafkaConsumer(
        topics.predictions, bootstrap_servers=options.broker, auto_offset_reset="earliest",
        **options.security.client_kwargs(),
    )  # fmt: skip
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
                    board.add(prediction, hour_of[prediction["id"]])
                    sink.write(record.value + b"\n")
                    progress.advance(watching)

        watcher = asyncio.create_task(watch())
        try:
            total = len(rows) * (1 if options.detector else 2)
            report = await produce_events(
                options.broker, topics, events, options.rate, total, progress,
                security=options.security,
            )  # fmt: skip
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
    board: Scoreboard | FaultBoard,
    counters: dict[str, int],
    topics: Topics,
    own_kafka: bool,
    started: float,
) -> None:
    console.print(
        f"\nstreamlearn demo: {options.stations} stations x {options.days} days, model"
        f" {', '.join(options.models)}\n"
        f"sent {report.observations} observations and {report.labels} labels;"
        f" received {board.seen} predictions; the worker learned {counters['learned']}\n"
        f"{board.summary()}\n"
        f"predictions: {options.out / 'predictions.jsonl'} (topic {topics.predictions})\n"
        f"worker log: {options.out / 'worker.log'}",
        soft_wrap=True,  # one line per fact, whatever the width: people grep it
    )
    if own_kafka:
        console.print("the local Kafka started for the demo has been stopped")
    else:
        console.print(f"tail them: streamlearn tail --predictions-topic {topics.predictions}")
    console.print(f"wall time: {time.monotonic() - started:.1f}s")
