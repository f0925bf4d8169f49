"""A local single-node Apache Kafka (KRaft, broker and controller in one JVM) on 127.0.0.1.

For development, demos and tests only. The jars come from Maven Central through `pom.xml`
beside this file (Kafka 3.9.1: the last 3.x line, the one aiokafka is tested against most);
Maven resolves them once and the classpath is cached, so later starts cost only the JVM.

    >>> LocalKafka(port=19092, data_dir="/tmp/k").bootstrap
    '127.0.0.1:19092'
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from streamlearn.errors import KafkaError
from streamlearn.kafka.broker import probe

KAFKA_VERSION = "3.9.1"  # keep in step with pom.xml
HERE = Path(__file__).parent
DEFAULT_PORT = 9092


def new_cluster_id(draw: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A random KRaft cluster id, drawn the way Kafka's `Uuid.randomUuid` draws one.

    Like Kafka, it draws again when the base64 text starts with "-": the storage tool's
    argument parser would take that id for an option and refuse to format (1 draw in 64).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(draw()).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def default_data_dir() -> Path:
    """Where `streamlearn kafka start` keeps the broker's logs and state unless told otherwise."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "streamlearn" / "kafka"


def cache_dir() -> Path:
    """Where the resolved Kafka classpath is cached between starts."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "streamlearn"


def resolve_classpath() -> str:
    """The broker's classpath: from the cache when its jars still exist, else from Maven."""
    cached = cache_dir() / f"kafka-{KAFKA_VERSION}.classpath"
    if cached.exists():
        classpath = cached.read_text().strip()
        if classpath and all(Path(jar).exists() for jar in classpath.split(os.pathsep)):
            return classpath
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaError("Maven (`mvn`) is not on PATH; install Maven to fetch the Kafka jars")
    cached.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            mvn, "-q", "-B", "-f", str(HERE / "pom.xml"), "dependency:build-classpath",
            "-Dmdep.includeScope=runtime", f"-Dmdep.outputFile={cached}",
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if done.returncode != 0 or not cached.exists():
        lines = (done.stdout + done.stderr).strip().splitlines() or ["no output"]
        error = next((line for line in lines if "ERROR" in line), lines[-1])
        raise KafkaError(f"Maven could not resolve Kafka {KAFKA_VERSION}: {error.strip()}")
    return cached.read_text().strip()


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pid_alive(pid: int) -> bool:
    """True for a live process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass(frozen=True)
class BrokerStatus:
    """What `streamlearn kafka status` reports."""

    running: bool
    pid: int | None
    address: str | None
    data_dir: Path

    def describe(self) -> str:
        if not self.running:
            return f"not running (data dir {self.data_dir})"
        return f"running, pid {self.pid}, address {self.address}, data dir {self.data_dir}"


class LocalKafka:
    """Start, stop and inspect one local broker, identified by its data dir."""

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        data_dir: str | Path | None = None,
        start_timeout: float = 120.0,
        heap: str = "512m",
    ) -> None:
        self.port = port
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.start_timeout = start_timeout
        self.heap = heap
        self._process: subprocess.Popen | None = None

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

    @property
    def _state_path(self) -> Path:
        return self.data_dir / "broker.json"

    def _recorded(self) -> dict | None:
        """The pid and port recorded by the last start, if that process still runs Kafka."""
        try:
            state = json.loads(self._state_path.read_text())
            cmdline = Path(f"/proc/{state['pid']}/cmdline").read_bytes()
        except (OSError, ValueError, KeyError):
            return None
        if b"kafka.Kafka" not in cmdline or not pid_alive(state["pid"]):
            return None
        return state

    def status(self) -> BrokerStatus:
        state = self._recorded()
        if state is None:
            return BrokerStatus(False, None, None, self.data_dir)
        return BrokerStatus(True, state["pid"], f"127.0.0.1:{state['port']}", self.data_dir)

    def start(self) -> BrokerStatus:
        """Start the broker and return once it answers metadata requests.

        Raises `KafkaError` (one line, with the log path) when it cannot. A broker already
        running on this data dir is left alone and its status returned.
        """
        current = self.status()
        if current.running:
            return current
        java = shutil.which("java")
        if java is None:
            raise KafkaError("Java is not on PATH; install a JDK 17 (e.g. openjdk-17-jre-headless)")
        if not _port_is_free(self.port):
            raise KafkaError(
                f"port {self.port} on 127.0.0.1 is busy; stop what uses it or pass --port"
            )
        classpath = resolve_classpath()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config(controller_port=free_port())
        if not (self.data_dir / "logs" / "meta.properties").exists():
            self._format_storage(java, classpath, config)
        with open(self.console_path, "ab") as console:
            self._process = subprocess.Popen(
                [
                    java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC",
                    "-Djava.awt.headless=true",
                    f"-Dkafka.logs.dir={self.data_dir}",
                    f"-Dlog4j.configuration=file:{HERE / 'log4j.properties'}",
                    "-cp", classpath, "kafka.Kafka", str(config),
                ],
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                cwd=self.data_dir, start_new_session=True,
            )  # fmt: skip
        self._state_path.write_text(json.dumps({"pid": self._process.pid, "port": self.port}))
        self._wait_ready()
        return self.status()

    def _write_config(self, controller_port: int) -> Path:
        config = self.data_dir / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.data_dir / 'logs'}",
                    "num.partitions=1",
                    "auto.create.topics.enable=false",
                    "default.replication.factor=1",
                    "min.insync.replicas=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=8",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=4",
                    "group.initial.rebalance.delay.ms=0",
                    # Room for oversized events to reach the worker, which dead-letters them.
                    "message.max.bytes=4194304",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        return config

    def _format_storage(self, java: str, classpath: str, config: Path) -> None:
        done = subprocess.run(
            [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
             "-t", new_cluster_id(), "-c", str(config), "--ignore-formatted"],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            raise KafkaError(f"formatting Kafka storage in {self.data_dir} failed: {detail[-1]}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                self._state_path.unlink(missing_ok=True)
                raise KafkaError(
                    f"the Kafka broker exited during start-up (code {self._process.returncode});"
                    f" see {self.log_path} and {self.console_path}"
                )
            if asyncio.run(probe(self.bootstrap, timeout=2.0)):
                return
            time.sleep(0.2)
        self.stop()
        raise KafkaError(
            f"the Kafka broker did not answer within {self.start_timeout:.0f}s; see {self.log_path}"
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker: SIGTERM, wait up to `timeout`, then SIGKILL. False if none ran."""
        state = self._recorded()
        if state is None:
            self._state_path.unlink(missing_ok=True)
            return False
        pid = state["pid"]
        os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 10.0)
        self._state_path.unlink(missing_ok=True)
        return True

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.pid == pid:
                self._process.poll()  # reap our own child so it does not linger as a zombie
            if not pid_alive(pid):
                return True
            time.sleep(0.1)
        return False


@contextlib.contextmanager
def kafka_for(external: str | None, data_dir: Path) -> Iterator[str]:
    """The bootstrap address of `external`, or of a `LocalKafka` on a free port in `data_dir`
    that runs for the `with` block and is stopped after it (also when its start fails)."""
    if external:
        yield external
        return
    kafka = LocalKafka(port=free_port(), data_dir=data_dir)
    try:
        kafka.start()
        yield kafka.bootstrap
    finally:
        kafka.stop()
