"""The Python peers: other ways to write streamlearn's job in Python, on the same backlog.

Each peer reads the backlog's observations and labels topics from the start, keeps one River
model per key (from the same factory as streamlearn), predicts on every observation, learns
when the label with the same `(key, id)` arrives, and produces every prediction to a predictions
topic of its own. Like the streamlearn worker, each runs as its own process, `python -m
bench.peers.<module>` (see `main`): imports and start-up stay out of the bench, and the peer
reports one JSON line with its own timing, from the first record it consumed to the moment
every prediction is delivered to the broker and every label learned. `drain` here runs one,
then counts the predictions it left in its topic: a peer that lost one fails the bench.

- `aiokafka_loop`: a hand-written aiokafka loop (`getmany` batches, models in a dict).
- `quix`: Quix Streams with the model in its State API (RocksDB, changelog on); it needs the
  optional `bench` extra (`pip install -e '.[bench]'`) and is skipped without it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from bench.cluster import security
from bench.e2e import Target
from streamlearn.kafka.broker import ensure_topics
from streamlearn.testing import record_count, unique

ROOT = Path(__file__).parents[2]  # where `bench` is importable from
STALL_SECONDS = 30.0  # a peer that consumes nothing for this long gives up


@dataclass(frozen=True)
class Peer:
    """One peer: its name in the JSON, its label in the table, and what it needs installed."""

    name: str
    label: str
    module: str
    summary: str  # what it does, for the table's notes
    requires: str | None = None  # the import name of an optional dependency

    def missing(self) -> str | None:
        """Why this peer cannot run here, or None if it can."""
        if self.requires is None or importlib.util.find_spec(self.requires) is not None:
            return None
        return f"{self.requires} is not installed (pip install -e '.[bench]')"


PEERS = (
    Peer(
        "aiokafka_loop", "aiokafka loop", "bench.peers.aiokafka_loop",
        "getmany batches, models in a dict, sends not awaited one by one; no state kept",
    ),
    Peer(
        "quix", "Quix Streams", "bench.peers.quix",
        "model pickled in its State API (RocksDB, changelog on), at-least-once",
        requires="quixstreams",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Spec:
    """What one peer run reads, writes and computes; passed to the peer process as flags."""

    bootstrap: str
    observations: str
    labels: str
    predictions: str
    model: str
    pairs: int  # the backlog's pairs: the peer stops when it has predicted and learned them all
    state_dir: Path  # for a peer that keeps state on disk

    def args(self) -> list[str]:
        return [f"--{name.replace('_', '-')}={value}" for name, value in asdict(self).items()]


@dataclass(frozen=True)
class Timing:
    """A peer's own report: timed from its first consumed record to its last delivery."""

    seconds: float
    first_record_at: float  # wall clock (`time.time`), for the start-up seen by the bench
    predicted: int
    learned: int


@dataclass(frozen=True)
class PeerDrain:
    """One peer's drain of the backlog, as the bench reports it."""

    pps: float
    seconds: float
    startup_seconds: float  # launch to the first record consumed (imports, group join)
    predictions: int  # records found in the peer's predictions topic afterwards
    topic: str  # that topic


def peer(name: str) -> Peer:
    """The peer called `name`."""
    (found,) = (p for p in PEERS if p.name == name)
    return found


class PeerFailed(RuntimeError):
    """The peer process failed, or did not produce every prediction."""


def drain(peer: Peer, target: Target, pairs: int, root: Path, timeout: float) -> PeerDrain:
    """Run `peer` on the backlog in its own process, into a new predictions topic; check it."""
    bootstrap, topics = target.bootstrap, target.topics
    predictions = unique(f"bench-{peer.name}.predictions")
    asyncio.run(ensure_topics(bootstrap, {predictions: target.partitions}, security=security()))
    state_dir = root / unique(peer.name)
    spec = Spec(
        bootstrap, topics.observations, topics.labels, predictions, target.model, pairs, state_dir
    )
    log = root / f"{state_dir.name}.log"
    launched = time.time()
    with open(log, "wb") as stderr:
        done = subprocess.run(
            [sys.executable, "-m", peer.module, *spec.args()],
            stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(_pythonpath())},
            timeout=timeout, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise PeerFailed(f"{peer.label} exited with {done.returncode}: {tail}")
    timing = Timing(**orjson.loads(done.stdout.splitlines()[-1]))
    produced = asyncio.run(record_count(bootstrap, predictions, security=security()))
    if produced != pairs or timing.learned != pairs:
        raise PeerFailed(
            f"{peer.label} left {produced:,} predictions in its topic and learned"
            f" {timing.learned:,} labels; the backlog has {pairs:,} pairs"
        )
    shutil.rmtree(state_dir, ignore_errors=True)  # its log stays beside it until the bench ends
    startup = timing.first_record_at - launched
    return PeerDrain(pairs / timing.seconds, timing.seconds, startup, produced, predictions)


def main(run: Callable[[Spec], Timing]) -> None:
    """The peer process: parse the flags `Spec.args` wrote, run, print the timing as JSON."""
    parser = argparse.ArgumentParser()
    for name in Spec.__dataclass_fields__:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, required=True)
    flags = vars(parser.parse_args())
    spec = Spec(**flags | {"pairs": int(flags["pairs"]), "state_dir": Path(flags["state_dir"])})
    timing = run(spec)
    sys.stdout.write(orjson.dumps(asdict(timing)).decode() + "\n")


def _pythonpath() -> list[str]:
    inherited = os.environ.get("PYTHONPATH")
    return [str(ROOT), *([inherited] if inherited else [])]
