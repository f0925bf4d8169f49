"""A local Apache Kafka (KRaft) on 127.0.0.1: one node, or a cluster of a few, for development,
demos and tests only.

The jars come from Maven Central through `pom-<version>.xml` beside this file (Kafka 3.9.1 by
default, 4.1.1 on request: see `versions.py`); Maven resolves them once and the classpath is
cached, so later starts cost only the JVM. `LocalCluster` (cluster.py) runs any number of nodes,
optionally with SASL_SSL and mutual-TLS listeners; `LocalKafka` is its single-node case on a
given port.

    >>> LocalKafka(port=19092, data_dir="/tmp/k").bootstrap
    '127.0.0.1:19092'
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from streamlearn.kafka.local.cluster import (
    BrokerStatus,
    LocalCluster,
    free_port,
    new_cluster_id,
    pid_alive,
    port_is_free,
)
from streamlearn.kafka.local.versions import (
    DEFAULT_VERSION,
    VERSIONS,
    cache_dir,
    check_version,
    resolve_classpath,
)

__all__ = [
    "DEFAULT_PORT",
    "KAFKA_VERSION",
    "VERSIONS",
    "BrokerStatus",
    "LocalCluster",
    "LocalKafka",
    "cache_dir",
    "check_version",
    "default_data_dir",
    "free_port",
    "kafka_for",
    "new_cluster_id",
    "pid_alive",
    "port_is_free",
    "resolve_classpath",
]

KAFKA_VERSION = DEFAULT_VERSION
DEFAULT_PORT = 9092


def default_data_dir() -> Path:
    """Where `streamlearn kafka start` keeps the broker's logs and state unless told otherwise."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "streamlearn" / "kafka"


class LocalKafka:
    """Start, stop and inspect one local broker on `port`, identified by its data dir."""

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        data_dir: str | Path | None = None,
        start_timeout: float = 120.0,
        heap: str = "512m",
        kafka_version: str | None = None,
    ) -> None:
        self.port = port
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.start_timeout = start_timeout
        self.heap = heap
        self.kafka_version = kafka_version

    def _cluster(self) -> LocalCluster:
        return LocalCluster(
            self.data_dir,
            brokers=1,
            kafka_version=self.kafka_version,
            port=self.port,
            start_timeout=self.start_timeout,
            heap=self.heap,
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """The broker's log, written by log4j (see log4j.properties)."""
        return self.data_dir / "server.log"

    @property
    def console_path(self) -> Path:
        """The JVM's stdout and stderr: empty unless the JVM itself fails to run Kafka."""
        return self.data_dir / "broker.out"

    def status(self) -> BrokerStatus:
        return self._cluster().node_status(1)

    def start(self) -> BrokerStatus:
        """Start the broker and return once it answers metadata requests.

        Raises `KafkaError` (one line, with the log path) when it cannot. A broker already
        running on this data dir is left alone and its status returned.
        """
        return self._cluster().start()[0]

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker: SIGTERM, wait up to `timeout`, then SIGKILL. False if none ran."""
        return self._cluster().stop(timeout)


@contextlib.contextmanager
def kafka_for(
    external: str | None, data_dir: Path, kafka_version: str | None = None
) -> Iterator[str]:
    """The bootstrap address of `external`, or of a `LocalKafka` (of `kafka_version`) on a free
    port in `data_dir` that runs for the `with` block and is stopped after it (also when its
    start fails)."""
    if external:
        yield external
        return
    kafka = LocalKafka(port=free_port(), data_dir=data_dir, kafka_version=kafka_version)
    try:
        kafka.start()
        yield kafka.bootstrap
    finally:
        kafka.stop()
