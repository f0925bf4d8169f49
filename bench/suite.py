"""One configuration measured from end to end, and the configurations a run is made of.

For each configuration the workload is generated once and fed to every measurement: the
in-process limit, the naive store, the drain (the same backlog for 1 and N workers, and for the
Python peers in `bench.peers`), and its first part to the paced latency run. In-process runs
and one-worker drains are repeated and their medians kept; each repeat of the one-worker drain
is followed by one drain of each peer, so a change of load hits both alike.

`--suite default` must finish within a time budget on a small machine, and the end-to-end rate
it will meet is not known in advance: the first configuration runs as asked, and the ones after
it are given fewer pairs when the pace measured so far says they would not fit in what remains
of the budget. Such a configuration says so in its note.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.baselines import limit_pps, naive_store_pps
from bench.cluster import fresh_topics, produce_backlog
from bench.e2e import Drain, Stalled, Target, drain
from bench.latency import Latency, measure
from bench.peers import PEERS, PeerDrain, PeerFailed
from bench.peers import drain as drain_peer
from bench.workload import make_workload
from streamlearn.learning.models import load_factory

LATENCY_SECONDS = 10.0  # how long the paced run lasts at most
LATENCY_MIN_PAIRS = 200
SAFETY = 1.5  # a later configuration's model may be slower than the first one's
MIN_PAIRS = 1_000


@dataclass(frozen=True)
class Config:
    """What one configuration runs; `note` says why it differs from what was asked, if it does."""

    model: str = "linear-regression"
    keys: int = 1_000
    pairs: int = 50_000
    label_delay: int = 10
    partitions: int = 8
    workers: int = 2
    repeats: int = 3  # in-process measurements
    e2e_repeats: int = 1  # drains with one worker, each followed by one drain of each peer
    peers: bool = True  # also drain with the Python peers (`bench.peers`)
    note: str = ""

    def describe(self) -> str:
        return (
            f"{self.model}, {self.keys:,} keys, {self.pairs:,} pairs, label delay"
            f" {self.label_delay}, {self.partitions} partitions"
        )

    @property
    def drains(self) -> int:
        """How many drains the configuration runs: the one-worker ones and one per scale-out."""
        return self.e2e_repeats + self.workers - 1


@dataclass
class Result:
    """Every run of every measurement of one configuration, with medians on demand."""

    config: Config
    keys_seen: int = 0
    limit: list[float] = field(default_factory=list)
    naive: list[float] = field(default_factory=list)
    drains: list[Drain] = field(default_factory=list)
    scaled: dict[int, Drain] = field(default_factory=dict)  # one drain per worker count > 1
    stalled: dict[int, str] = field(default_factory=dict)  # worker count -> what stalled
    peers: dict[str, list[PeerDrain]] = field(default_factory=dict)  # peer name -> its drains
    peers_not_run: dict[str, str] = field(default_factory=dict)  # peer name -> why not, or failed
    latency: Latency | None = None
    seconds: float = 0.0

    def drained(self, value: Callable[[Drain], float]) -> float:
        """The median of `value` over the one-worker drains."""
        return statistics.median(value(run) for run in self.drains)

    def peer_seconds_per_pair(self) -> float:
        """Seconds per pair of one drain by each peer that ran, added up (medians)."""
        return sum(1 / statistics.median(d.pps for d in runs) for runs in self.peers.values())


@dataclass(frozen=True)
class Pace:
    """What a configuration costs, learned from one that ran: fixed seconds plus per pair."""

    fixed: float  # start-ups, stops, the latency run: whatever the pair count does not change
    in_process: float  # seconds per pair of one limit run plus one naive run
    drain: float  # seconds per pair of one drain, producing its backlog included
    peers: float = 0.0  # seconds per pair of one drain by each peer, added up

    @classmethod
    def of(cls, result: Result) -> Pace:
        in_process = 1 / statistics.median(result.limit) + 1 / statistics.median(result.naive)
        drain = 1 / result.drained(lambda d: d.pps)
        pace = cls(0.0, in_process, drain, result.peer_seconds_per_pair())
        proportional = result.config.pairs * pace.per_pair(result.config)
        return replace(pace, fixed=max(0.0, result.seconds - proportional))

    def per_pair(self, config: Config) -> float:
        """Seconds per pair of everything `config` runs that grows with the pair count."""
        peers = config.e2e_repeats * self.peers if config.peers else 0.0
        return config.repeats * self.in_process + config.drains * self.drain + peers

    def pairs_within(self, config: Config, seconds: float) -> int:
        """How many pairs `config` can have to take about `seconds`, with a margin."""
        per_pair = SAFETY * self.per_pair(config)
        return int(max(0.0, seconds - SAFETY * self.fixed) / per_pair)


def suite(base: Config, name: str) -> list[Config]:
    """`single`: just `base`. `default`: `base`, then bikes and 100,000 keys once each."""
    if name == "single":
        return [base]
    once = replace(base, repeats=1, e2e_repeats=1)
    return [
        base,
        replace(once, model="bikes", note="bikes preset, repeated once"),
        replace(once, keys=100_000, pairs=100_000, note="a new key for every pair, up to 100,000"),
    ]


def fit(config: Config, pace: Pace, seconds: float) -> Config:
    """`config`, with fewer pairs (and a note saying so) if it would not fit in `seconds`."""
    pairs = max(MIN_PAIRS, pace.pairs_within(config, seconds) // 1_000 * 1_000)
    if pairs >= config.pairs:
        return config
    note = (
        f"{config.note}; pairs cut from {config.pairs:,} to fit the time budget"
        f" (about {seconds:.0f} s left for it)"
    )
    return replace(config, pairs=pairs, note=note.lstrip("; "))


def run(
    config: Config,
    bootstrap: str,
    scratch: Path,
    say: Callable[[str], None],
    broker_pid: int | None = None,
) -> Result:
    """Measure one configuration; `say` reports progress."""
    started = time.perf_counter()
    result = Result(config)
    workload = make_workload(config.model, config.keys, config.pairs, config.label_delay)
    result.keys_seen = workload.keys
    factory = load_factory(config.model)
    for repeat in range(config.repeats):
        say(f"limit and naive store, run {repeat + 1} of {config.repeats}")
        result.limit.append(limit_pps(workload, factory))
        result.naive.append(naive_store_pps(workload, factory, scratch))

    say(f"producing the backlog: {len(workload.events):,} events")
    records = workload.encoded()
    topics = fresh_topics(bootstrap, config.partitions)
    asyncio.run(produce_backlog(bootstrap, topics, records))
    target = Target(bootstrap, topics, config.model, config.partitions, broker_pid)
    timeout = 120 + 20 * workload.pairs / min(result.naive)  # the store's worst pace, 20x
    for peer in PEERS if config.peers else ():
        if (missing := peer.missing()) is not None:
            say(f"{peer.label}: skipped, {missing}")
            result.peers_not_run[peer.name] = f"skipped: {missing}"
    for repeat in range(config.e2e_repeats):
        say(f"drain with 1 worker, run {repeat + 1} of {config.e2e_repeats}")
        result.drains.append(drain(target, workload.pairs, 1, scratch, timeout))
        if config.peers:
            _drain_peers(result, target, workload.pairs, scratch, timeout, say)
    for workers in range(2, config.workers + 1):
        say(f"drain with {workers} workers")
        try:
            result.scaled[workers] = drain(target, workload.pairs, workers, scratch, timeout)
        except Stalled as stall:
            say(f"the {workers}-worker drain stalled: {stall}")
            result.stalled[workers] = str(stall)

    rate = result.drained(lambda d: d.pps) / 2
    pairs = min(workload.pairs, max(LATENCY_MIN_PAIRS, round(rate * LATENCY_SECONDS)))
    say(f"latency: {pairs:,} pairs at {rate:,.0f} pairs/s")
    paced = workload.encoded(pairs)
    result.latency = measure(bootstrap, config.model, config.partitions, paced, rate, scratch)
    result.seconds = time.perf_counter() - started
    return result


def _drain_peers(
    result: Result,
    target: Target,
    pairs: int,
    scratch: Path,
    timeout: float,
    say: Callable[[str], None],
) -> None:
    """One drain of the backlog by each peer that can run; a failure is noted, not raised."""
    for peer in PEERS:
        if peer.name in result.peers_not_run:
            continue
        say(f"drain with the {peer.label} peer")
        try:
            run = drain_peer(peer, target, pairs, scratch, timeout)
        except (PeerFailed, subprocess.TimeoutExpired) as error:
            say(f"the {peer.label} peer failed: {error}")
            result.peers_not_run[peer.name] = f"failed: {error}"
            result.peers.pop(peer.name, None)
            continue
        result.peers.setdefault(peer.name, []).append(run)


def run_all(
    configs: list[Config],
    bootstrap: str,
    scratch: Path,
    budget: float,
    say: Callable[[str], None],
    done: Callable[[Result], None],
    broker_pid: int | None = None,
) -> None:
    """Run `configs` in order, fitting each one after the first into what is left of `budget`.

    `done` gets each result as soon as it is complete.
    """
    started = time.perf_counter()
    pace: Pace | None = None
    for index, config in enumerate(configs):
        if pace is not None:
            left = budget - (time.perf_counter() - started)
            config = fit(config, pace, left / (len(configs) - index))
        say(f"configuration: {config.describe()}")
        result = run(config, bootstrap, scratch, say, broker_pid)
        if pace is None:
            pace = Pace.of(result)
        done(result)
