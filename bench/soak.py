"""`python -m bench.soak`: the operator's kill loop as a long soak, with its figures.

Workers of one app share 8 partitions while the bench's linear workload (50 keys) flows at a
steady pace for `--duration` (8 min). Every 15-30 s a random worker is SIGKILLed (1 in 8 times
SIGTERMed instead) and started again 2-5 s later, 1 in 4 times with its data dir wiped. Then the
flow stops, every worker is brought back, the group drains, a probe observation goes to every
key, and `streamlearn/learning/audit.py` checks every prediction copy against River's oracle
(the kill loop test runs the same checks). The report: the audit; how much of the time output
was paused (no prediction at all in a second while an observation waited through it) and how
much of each key's time it waited so; from each SIGKILL until every key's predictions flowed
again (the first answer to an observation sent after the kill, for the slowest key); each
restart's time to ready, and SIGTERM exits.

It starts a local Kafka unless `--broker` names one, shows progress every 10 s, and stops every
process it started, also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console

from bench.cluster import fresh_topics, security
from bench.e2e import Target
from bench.latency import predictions_consumer, send_paced
from bench.workload import FEATURES, make_workload
from streamlearn.commands.options import compose
from streamlearn.kafka.local import free_port, kafka_for
from streamlearn.learning.audit import Audit, audit
from streamlearn.learning.models import load_factory
from streamlearn.settings import Topics
from streamlearn.testing import WorkerProcess, group_lag, produce, unique, until

MODEL = "linear-regression"
PROBE_X = dict.fromkeys(FEATURES, 0.5)


@dataclass(frozen=True)
class Options:
    """One soak's configuration."""

    duration: float = 480.0
    workers: int = 2
    partitions: int = 8
    keys: int = 50
    rate: float = 100.0  # pairs per second
    label_delay: int = 10
    static: bool = True  # static group membership (--instance-id per worker)
    session_timeout: float = 30.0
    seed: int = 18


@dataclass
class Disruption:
    """One kill or stop, and the restart after it."""

    at: float  # when the signal was sent (perf_counter)
    worker: str
    signal: str  # "SIGKILL" or "SIGTERM"
    wiped: bool = False
    exit_seconds: float = 0.0
    ready_seconds: float | None = None  # None: killed again before it was ready


@dataclass
class Run:
    """What the soak saw: sends, arrivals, disruptions."""

    sent: dict[tuple[bytes, Any], float] = field(default_factory=dict)
    arrivals: list[tuple[float, dict]] = field(default_factory=list)
    disruptions: list[Disruption] = field(default_factory=list)
    flow: tuple[float, float] = (0.0, 0.0)


class Team:
    """The soak's workers; restarts run as tasks so that a starting worker can be killed too."""

    def __init__(self, bootstrap: str, topics: Topics, root: Path, options: Options) -> None:
        self.app_id = unique("soak")
        self.workers = {}
        for number in range(1, options.workers + 1):
            name = f"w{number}"
            flags = ["--session-timeout", str(options.session_timeout)]
            if options.static:
                flags += ["--instance-id", name]
            self.workers[name] = WorkerProcess(
                bootstrap, root / name, free_port(), topics, self.app_id, model=MODEL,
                partitions=options.partitions, extra_args=flags,
            )  # fmt: skip
        self.starting: dict[str, asyncio.Task] = {}

    async def start(self, name: str, disruption: Disruption | None = None) -> None:
        """Launch `name` and wait until it is ready or dies; note its time to ready."""
        worker = self.workers[name]
        launched = time.perf_counter()
        worker.launch()
        await until(lambda: worker.ready() or not worker.running(), 180, interval=0.1)
        if disruption is not None and worker.ready():
            disruption.ready_seconds = time.perf_counter() - launched

    def restart_later(self, disruption: Disruption, delay: float) -> None:
        async def restart() -> None:
            await asyncio.sleep(delay)  # the operator's pause, not a synchronisation
            await self.start(disruption.worker, disruption)

        self.starting[disruption.worker] = asyncio.create_task(restart())

    async def all_up(self) -> None:
        """Wait for pending restarts, then start any worker that is down."""
        await asyncio.gather(*self.starting.values())
        down = [name for name, worker in self.workers.items() if not worker.running()]
        await asyncio.gather(*(self.start(name) for name in down))

    def describe(self) -> str:
        states = []
        for name, worker in self.workers.items():
            state = "down"
            if worker.running():
                state = "up" if worker.ready() else "starting"
            states.append(f"{name} {state}")
        return ", ".join(states)

    def stop(self) -> None:
        """SIGTERM every worker still running (SIGKILL after 30 s): only the soak's own."""
        for worker in self.workers.values():
            if worker.running():
                worker.stop(timeout=30)


async def chaos(team: Team, run: Run, rng: random.Random, stop: asyncio.Event) -> None:
    """Every 15-30 s, kill or stop a random running worker and restart it 2-5 s later."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(15, 30))
            return
        running = [name for name, worker in team.workers.items() if worker.running()]
        if not running:
            continue
        name = rng.choice(running)
        term = rng.random() < 1 / 8
        worker = team.workers[name]
        disruption = Disruption(time.perf_counter(), name, "SIGTERM" if term else "SIGKILL")
        run.disruptions.append(disruption)
        await asyncio.to_thread(worker.stop if term else worker.kill)
        disruption.exit_seconds = time.perf_counter() - disruption.at
        if rng.random() < 1 / 4:
            shutil.rmtree(worker.data_dir, ignore_errors=True)
            disruption.wiped = True
        team.restart_later(disruption, rng.uniform(2, 5))


async def read(consumer: Any, run: Run, stop: asyncio.Event) -> None:
    """Keep every prediction record with its arrival time until `stop`."""
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=100)
        arrived = time.perf_counter()
        for records in batch.values():
            run.arrivals.extend((arrived, orjson.loads(record.value)) for record in records)


async def soak(bootstrap: str, root: Path, options: Options, say: Any) -> tuple[Run, Audit]:
    """Run the soak (see above) and audit it."""
    rng = random.Random(options.seed)
    topics = await asyncio.to_thread(fresh_topics, bootstrap, options.partitions)
    pairs = int(options.rate * options.duration)
    workload = make_workload(MODEL, options.keys, pairs, options.label_delay)
    run, team = Run(), Team(bootstrap, topics, root, options)
    consumer = await predictions_consumer(Target(bootstrap, topics, MODEL, options.partitions))
    tasks: list[asyncio.Task] = []
    try:
        say(f"starting {options.workers} workers ({team.describe()})")
        await asyncio.gather(*(team.start(name) for name in team.workers))
        stop_reading, stop_chaos = asyncio.Event(), asyncio.Event()
        reading = asyncio.create_task(read(consumer, run, stop_reading))
        killing = asyncio.create_task(chaos(team, run, rng, stop_chaos))
        tasks = [reading, killing, asyncio.create_task(report_progress(team, run, pairs, say))]
        started = time.perf_counter()
        await send_paced(bootstrap, topics, workload.encoded(), options.rate, run.sent)
        run.flow = (started, time.perf_counter())
        stop_chaos.set()
        await killing
        say("flow done; bringing every worker back and draining")
        await team.all_up()
        await drained(bootstrap, team.app_id, [topics.observations, topics.labels], 600)
        probes = [(topics.observations, f"key-{k:06d}", {"id": "probe", "x": PROBE_X})
                  for k in range(workload.keys)]  # fmt: skip
        await produce(bootstrap, probes, security=security())
        answered = lambda: sum(v["id"] == "probe" for _, v in run.arrivals)  # noqa: E731
        await until(lambda: answered() >= len(probes), 120, interval=0.5)
        stop_reading.set()
        await reading
    finally:
        for task in tasks:  # done already, unless interrupted
            task.cancel()
        team.stop()  # also when interrupted: the tasks still restarting are cancelled after it
        await consumer.stop()
    events = [(e.kind, e.key, e.value) for e in workload.events]
    events += [("observation", key, value) for _, key, value in probes]
    values = [value for _, value in run.arrivals]
    return run, audit(events, values, load_factory(MODEL))


async def drained(bootstrap: str, group: str, inputs: list[str], timeout: float) -> None:
    """Wait until the group has committed every record of `inputs`."""
    deadline = time.monotonic() + timeout
    while (lag := await group_lag(bootstrap, group, inputs, security=security())) != 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{lag} records still not committed after {timeout:.0f} s")
        await asyncio.sleep(0.5)


async def report_progress(team: Team, run: Run, pairs: int, say: Any) -> None:
    while True:
        await asyncio.sleep(10)
        kills = sum(d.signal == "SIGKILL" for d in run.disruptions)
        say(
            f"sent {len(run.sent):,}/{pairs:,} observations, {len(run.arrivals):,} predictions;"
            f" {kills} kills, {len(run.disruptions) - kills} stops; {team.describe()}"
        )


def figures(run: Run, options: Options) -> dict[str, Any]:
    """The soak's timing figures (see the module docstring), from what it saw."""
    first: dict[tuple[str, Any], float] = {}
    for arrived, value in run.arrivals:
        first.setdefault((value["key"], value["id"]), arrived)
    waits = []  # (key, sent, answered) per observation of the flow
    for (key, event_id), sent in run.sent.items():
        answered = first.get((key.decode(), event_id), math.inf)
        waits.append((key.decode(), sent, answered))
    start, end = run.flow
    seconds = max(1, int(end - start))
    key_stalled: dict[str, set[int]] = defaultdict(set)
    for key, sent, answered in waits:
        # whole seconds of the flow this observation waited through
        last = seconds if answered == math.inf else min(seconds, int(answered - start))
        for second in range(math.ceil(sent - start), last):
            key_stalled[key].add(second)
    active = {int(arrived - start) for arrived, _ in run.arrivals}
    waiting = set().union(*key_stalled.values()) if key_stalled else set()
    paused = waiting - active
    keys = max(1, len({key for key, _, _ in waits}))
    latencies = sorted((a - s) * 1000 for _, s, a in waits if a != math.inf)
    kills = [d for d in run.disruptions if d.signal == "SIGKILL"]
    recoveries = [r for d in kills if (r := recovery(d.at, waits)) is not None]
    readies = [d.ready_seconds for d in run.disruptions if d.ready_seconds is not None]
    exits = [d.exit_seconds for d in run.disruptions if d.signal == "SIGTERM"]
    return {
        "workers": options.workers,
        "static_membership": options.static,
        "session_timeout_s": options.session_timeout,
        "flow_s": round(end - start, 1),
        "paused_pct": round(100 * len(paused) / seconds, 1),
        "key_time_waiting_pct": round(
            100 * sum(len(s) for s in key_stalled.values()) / (seconds * keys), 1
        ),
        "latency_p50_ms": round(_quantile(latencies, 0.5)),
        "latency_p99_ms": round(_quantile(latencies, 0.99)),
        "sigkills": len(kills),
        "sigterms": len(exits),
        "wiped": sum(d.wiped for d in run.disruptions),
        "kill_to_flowing_median_s": round(statistics.median(recoveries), 1) if recoveries else None,
        "kill_to_flowing_max_s": round(max(recoveries), 1) if recoveries else None,
        "restarts_ready": len(readies),
        "restarts_killed_before_ready": len(run.disruptions) - len(readies),
        "ready_median_s": round(statistics.median(readies), 1) if readies else None,
        "ready_max_s": round(max(readies), 1) if readies else None,
        "sigterm_exit_max_s": round(max(exits), 1) if exits else None,
    }


def recovery(at: float, waits: list[tuple[str, float, float]]) -> float | None:
    """Seconds from `at` until every key had an answer to an observation sent after it."""
    answered: dict[str, float] = {}
    for key, sent, answer in waits:
        if sent >= at:
            answered[key] = min(answered.get(key, math.inf), answer)
    every = {key for key, _, _ in waits}
    if answered.keys() != every:
        return None  # the flow ended before every key had an observation after the kill
    return max(answered.values()) - at


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else math.nan


def flag(name: str, *decls: str, **kwargs: Any) -> Any:
    """A click option that shows its default in `--help`."""
    return click.option(name, *decls, show_default=True, **kwargs)


flags = compose(
    flag("--duration", type=click.FloatRange(30), default=Options.duration,
         help="Seconds of event flow (and of kills)."),
    flag("--workers", type=click.IntRange(1), default=Options.workers),
    flag("--partitions", type=click.IntRange(1), default=Options.partitions),
    flag("--keys", type=click.IntRange(1), default=Options.keys),
    flag("--rate", type=click.FloatRange(1), default=Options.rate,
         help="Pairs (an observation and its label) per second."),
    flag("--static/--dynamic", default=Options.static,
         help="Static group membership: each worker keeps an --instance-id."),
    flag("--session-timeout", type=click.FloatRange(6, 300), default=Options.session_timeout),
    flag("--seed", type=int, default=Options.seed),
    flag("--broker", default=None, help="Use the Kafka at HOST:PORT instead of starting one."),
    flag("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
         help="Write the figures and the audit to this file."),
    flag("--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
         help="Keep the workers' data dirs and logs here (default: a temporary dir)."),
)  # fmt: skip


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@flags
def main(broker: str | None, json_path: Path | None, keep: Path | None, **flags: Any) -> None:
    """The operator's kill loop: workers killed and restarted while events flow, then checked."""
    options = Options(**flags)
    console = Console(highlight=False)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    load = [round(x, 2) for x in os.getloadavg()]
    console.print(f"soak: {options}\nload average at start: {load}")
    try:
        with contextlib.ExitStack() as stack:
            scratch = keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
            bootstrap = stack.enter_context(kafka_for(broker, scratch / "kafka"))
            say = lambda text: console.log(text, markup=False)  # noqa: E731
            run, result = asyncio.run(soak(bootstrap, scratch / "workers", options, say))
    except KeyboardInterrupt:
        console.print("soak: interrupted; stopped the workers and the broker it started")
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    numbers = figures(run, options)
    numbers["load_average"] = {"start": load, "end": [round(x, 2) for x in os.getloadavg()]}
    console.print(result.summary())
    for line in result.problems():
        console.print(f"  [red]{line}[/]")
    for name, value in numbers.items():
        console.print(f"  {name}: {value}")
    if json_path is not None:
        numbers["audit"] = result.summary()
        numbers["problems"] = result.problems()
        json_path.write_bytes(orjson.dumps(numbers, option=orjson.OPT_INDENT_2))
    if result.problems() or numbers["paused_pct"] >= 25:
        sys.exit(1)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
