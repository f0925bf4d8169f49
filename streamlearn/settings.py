"""What a worker is configured with; the CLI fills it from flags and `STREAMLEARN_*` variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streamlearn.kafka.security import PLAINTEXT, Security
from streamlearn.learning.anomaly import Threshold
from streamlearn.learning.core import DEFAULT_HORIZON, DEFAULT_MAX_PENDING, Learner, Selection
from streamlearn.learning.drift import DriftWatch
from streamlearn.learning.events import DEFAULT_MAX_EVENT_BYTES
from streamlearn.learning.models import load_candidates


@dataclass(frozen=True)
class Topics:
    """The four topic names; `Topics.with_prefix("shop.")` prefixes them all."""

    observations: str = "observations"
    labels: str = "labels"
    predictions: str = "predictions"
    dead_letters: str = "dead-letters"

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        defaults = cls()
        return cls(*(prefix + name for name in defaults.names()))

    def names(self) -> tuple[str, str, str, str]:
        return (self.observations, self.labels, self.predictions, self.dead_letters)


@dataclass(frozen=True)
class Settings:
    """Everything one worker of the app needs to know."""

    broker: str = "localhost:9092"
    security: Security = PLAINTEXT  # protocol, SASL user and TLS files for every client
    replication: int | None = None  # replicas of the topics it creates (None: 3, brokers allowing)
    models: tuple[str, ...] = ("linear-regression",)  # candidates per key, listed order
    selection: Selection = field(default_factory=Selection)  # which candidate serves
    threshold: Threshold = field(default_factory=Threshold)  # flags an anomaly detector's scores
    drift: DriftWatch = field(default_factory=DriftWatch)  # watches a key's error for drift
    app_id: str = "streamlearn"
    data_dir: Path = Path("streamlearn-data")
    partitions: int = 8
    web_port: int = 6066
    web_host: str = "127.0.0.1"  # the address the web server binds: loopback unless told
    web_token: str | None = None  # Bearer token every streamlearn route asks for (env only)
    topics: Topics = field(default_factory=Topics)
    horizon: float = DEFAULT_HORIZON
    max_pending: int = DEFAULT_MAX_PENDING
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    standby_replicas: int = 0  # Faust defaults to 1: see README "Scaling out" for why not here
    session_timeout: float = 30.0
    instance_id: str | None = None  # static group membership (KIP-345): see README "Scaling out"
    cache_size: int = 10_000  # live key states kept per partition beyond the unwritten ones
    checkpoint_interval: float = (
        5.0  # seconds between checkpoints (streamlearn/worker/checkpoint.py) ...
    )
    checkpoint_records: int = 20_000  # ... or records processed, whichever comes first
    merge_wait: float = 5.0  # how long a record waits for the other input topic (merge.py) ...
    merge_grace: float = 0.1  # ... to be fetched this long after the record's time
    log_interval: float = 10.0
    state_secret: bytes | None = field(default=None, repr=False)  # opens loaded states

    def learner(self) -> Learner:
        """The learning core these settings configure; a bad model, or flags that do not
        suit it, raise `ModelError` here, before any broker is touched."""
        return Learner(
            load_candidates(self.models), self.horizon, self.max_pending, self.selection,
            self.threshold, self.drift,
        )  # fmt: skip
