"""Local KRaft clusters on 127.0.0.1: one JVM per node, each broker and controller.

A data dir holds one cluster: `cluster.json` records its layout (Kafka version, node ports,
cluster id, security) the first time it starts, so that restarts reuse the same ports and
storage. A single node keeps its files in the data dir itself (the layout `LocalKafka` has
always used); the nodes of a larger cluster each have a `node-<id>` subdir.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError as ClientKafkaError

from streamlearn.errors import KafkaError
from streamlearn.kafka.broker import _quiet
from streamlearn.kafka.local.certs import CertFiles
from streamlearn.kafka.local.config import HOST, NodePorts, server_properties
from streamlearn.kafka.local.credentials import (
    Credentials,
    ensure_credentials,
    plain_jaas,
    scram_args,
    write_env_file,
)
from streamlearn.kafka.local.versions import (
    DEFAULT_VERSION,
    check_version,
    logging_args,
    resolve_classpath,
)

MAX_BROKERS = 9


def new_cluster_id(draw: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A random KRaft cluster id, drawn the way Kafka's `Uuid.randomUuid` draws one.

    Like Kafka, it draws again when the base64 text starts with "-": the storage tool's
    argument parser would take that id for an option and refuse to format (1 draw in 64).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(draw()).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def port_is_free(port: int) -> bool:
    """True when nothing listens on `port` of 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def pid_alive(pid: int) -> bool:
    """True for a live process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def broker_ids(address: str, timeout: float = 2.0) -> set[int] | None:
    """The ids of the live brokers the node at `address` reports, or None if it does not answer."""
    client = AIOKafkaClient(
        bootstrap_servers=address, request_timeout_ms=max(1000, int(timeout * 1000))
    )
    with _quiet("aiokafka"):
        try:
            await asyncio.wait_for(client.bootstrap(), timeout)
            return {broker.nodeId for broker in client.cluster.brokers()}
        except (TimeoutError, ClientKafkaError, OSError):
            return None
        finally:
            await client.close()


@dataclass(frozen=True)
class BrokerStatus:
    """What `streamlearn kafka status` reports about one node."""

    running: bool
    pid: int | None
    address: str | None
    data_dir: Path
    node: int = 1

    def describe(self) -> str:
        if not self.running:
            return f"not running (data dir {self.data_dir})"
        return f"running, pid {self.pid}, address {self.address}, data dir {self.data_dir}"


@dataclass(frozen=True)
class Layout:
    """What `cluster.json` records: chosen at the first start, reused by every later one."""

    version: str
    cluster_id: str
    security: bool
    nodes: dict[int, NodePorts]

    def to_json(self) -> str:
        nodes = {str(node): ports.to_json() for node, ports in self.nodes.items()}
        record = {"version": self.version, "cluster_id": self.cluster_id}
        return json.dumps(record | {"security": self.security, "nodes": nodes}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Layout:
        record = json.loads(text)
        nodes = {int(node): NodePorts(**ports) for node, ports in record["nodes"].items()}
        return cls(record["version"], record["cluster_id"], record["security"], nodes)


class LocalCluster:
    """Start, stop, inspect, kill and restart the nodes of a local cluster kept in `data_dir`.

    `brokers`, `kafka_version` and `security` left as None take what the data dir recorded
    (else 1 node, Kafka 3.9.1, no security); given ones must match what it recorded.
    `port` is node 1's PLAINTEXT port (default: a free one the first time).
    """

    def __init__(
        self,
        data_dir: str | Path,
        brokers: int | None = None,
        kafka_version: str | None = None,
        security: bool | None = None,
        port: int | None = None,
        start_timeout: float = 120.0,
        heap: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.start_timeout = start_timeout
        self._port = port
        self._processes: dict[int, subprocess.Popen] = {}
        recorded = self._read_layout()
        self.brokers = brokers or (len(recorded.nodes) if recorded else 1)
        if not 1 <= self.brokers <= MAX_BROKERS:
            raise KafkaError(f"--brokers must be between 1 and {MAX_BROKERS}, not {self.brokers}")
        self.kafka_version = check_version(
            kafka_version or (recorded.version if recorded else DEFAULT_VERSION)
        )
        self.security = security if security is not None else bool(recorded and recorded.security)
        self.heap = heap or ("512m" if self.brokers == 1 else "384m")
        if recorded is not None:
            self._check_matches(recorded)

    # -- layout ---------------------------------------------------------------------------

    @property
    def _layout_path(self) -> Path:
        return self.data_dir / "cluster.json"

    def _read_layout(self) -> Layout | None:
        try:
            return Layout.from_json(self._layout_path.read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @property
    def recorded(self) -> bool:
        """True once a start has recorded this data dir's layout (ports, version, cluster id)."""
        return self._read_layout() is not None

    def _check_matches(self, recorded: Layout) -> None:
        """Refuse a data dir formatted for another cluster: its storage would not fit."""
        wanted = (self.brokers, self.kafka_version, self.security)
        have = (len(recorded.nodes), recorded.version, recorded.security)
        if wanted != have:
            raise KafkaError(
                f"{self.data_dir} holds a {have[0]}-node Kafka {have[1]} cluster"
                f"{' with security' if have[2] else ''}; start it with those settings"
                " or pass another --data-dir"
            )

    def _layout(self) -> Layout:
        """The recorded layout, or a new one with fresh ports; node 1 takes `port` if given."""
        layout = self._read_layout()
        formatted = (self.node_dir(1) / "logs" / "meta.properties").exists()
        if layout is None and self.security and formatted:
            # Its storage was formatted before this layout existed: without the SCRAM user.
            raise KafkaError(
                f"{self.data_dir} was formatted without --secure-listeners;"
                " pass another --data-dir for a broker with them"
            )
        if layout is None:
            taken: set[int] = {self._port} if self._port else set()

            def pick() -> int:
                while (port := free_port()) in taken:
                    pass
                taken.add(port)
                return port

            nodes = {}
            for node in range(1, self.brokers + 1):
                plaintext = self._port if (node == 1 and self._port) else pick()
                secure = (pick(), pick()) if self.security else (None, None)
                nodes[node] = NodePorts(plaintext, pick(), *secure)
            cluster_id = new_cluster_id()
            layout = Layout(self.kafka_version, cluster_id, self.security, nodes)
        one = layout.nodes[1]
        if self.brokers == 1:
            # A single node is its own quorum: a busy controller port is simply replaced.
            controller = one.controller if port_is_free(one.controller) else free_port()
            one = NodePorts(self._port or one.plaintext, controller, one.sasl_ssl, one.ssl)
        elif self._port:
            one = NodePorts(self._port, one.controller, one.sasl_ssl, one.ssl)
        layout = Layout(
            layout.version, layout.cluster_id, layout.security, {**layout.nodes, 1: one}
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._layout_path.write_text(layout.to_json())
        return layout

    def node_dir(self, node: int) -> Path:
        """Where node `node` keeps its config, log, pid and storage."""
        return self.data_dir if self.brokers == 1 else self.data_dir / f"node-{node}"

    def log_path(self, node: int = 1) -> Path:
        """The node's log, written by log4j (see log4j.properties / log4j2.properties)."""
        return self.node_dir(node) / "server.log"

    def console_path(self, node: int = 1) -> Path:
        """The JVM's stdout and stderr: empty unless the JVM itself fails to run Kafka."""
        return self.node_dir(node) / "broker.out"

    def _state_path(self, node: int) -> Path:
        return self.node_dir(node) / "broker.json"

    # -- addresses --------------------------------------------------------------------------

    def _ports(self) -> dict[int, NodePorts]:
        layout = self._read_layout()
        if layout is not None:
            return layout.nodes
        return {1: NodePorts(self._port or 0, 0)} if self.brokers == 1 else {}

    @property
    def listeners(self) -> dict[str, str]:
        """Bootstrap addresses by security protocol: PLAINTEXT, and SASL_SSL and SSL with
        security; each the comma-joined addresses of all nodes."""
        nodes = sorted(self._ports().items())
        found = {}
        for protocol, attribute in (
            ("PLAINTEXT", "plaintext"),
            ("SASL_SSL", "sasl_ssl"),
            ("SSL", "ssl"),
        ):
            ports = [getattr(p, attribute) for _, p in nodes]
            if ports and all(ports):
                found[protocol] = ",".join(f"{HOST}:{port}" for port in ports)
        return found

    @property
    def bootstrap(self) -> str:
        """All nodes' PLAINTEXT addresses, comma-joined."""
        return self.listeners.get("PLAINTEXT", "")

    def address(self, node: int) -> str:
        """Node `node`'s PLAINTEXT address."""
        return f"{HOST}:{self._ports()[node].plaintext}"

    @property
    def credentials(self) -> Credentials | None:
        """What a client of the SASL_SSL and SSL listeners needs, when security is on."""
        return ensure_credentials(self.data_dir / "tls") if self.security else None

    @property
    def env_path(self) -> Path:
        """The file `start` writes for `source`: STREAMLEARN_* variables for SASL_SSL."""
        return self.data_dir / "client.env"

    # -- status -----------------------------------------------------------------------------

    def _recorded(self, node: int) -> dict | None:
        """The pid and port recorded by the node's last start, if that process still runs Kafka."""
        try:
            state = json.loads(self._state_path(node).read_text())
            cmdline = Path(f"/proc/{state['pid']}/cmdline").read_bytes()
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if b"kafka.Kafka" not in cmdline or not pid_alive(state["pid"]):
            return None
        return state

    def node_status(self, node: int) -> BrokerStatus:
        state = self._recorded(node)
        if state is None:
            return BrokerStatus(False, None, None, self.node_dir(node), node)
        address = f"{HOST}:{state['port']}"
        return BrokerStatus(True, state["pid"], address, self.node_dir(node), node)

    def status(self) -> list[BrokerStatus]:
        """One status per node, in node order."""
        return [self.node_status(node) for node in range(1, self.brokers + 1)]

    @property
    def running(self) -> bool:
        """True when every node runs."""
        return all(s.running for s in self.status())

    # -- start ------------------------------------------------------------------------------

    def start(self) -> list[BrokerStatus]:
        """Start every node not running and return once all answer with all nodes registered.

        Raises `KafkaError` (one line, with the log path) when one cannot start; the nodes this
        call started are stopped again then (and on Ctrl-C).
        """
        if self.running:
            return self.status()
        java = shutil.which("java")
        if java is None:
            raise KafkaError("Java is not on PATH; install a JDK 17 (e.g. openjdk-17-jre-headless)")
        layout = self._layout()
        for node, ports in layout.nodes.items():
            if self.node_status(node).running:
                continue
            for port in (ports.plaintext, ports.controller, ports.sasl_ssl, ports.ssl):
                if port is not None and not port_is_free(port):
                    raise KafkaError(
                        f"port {port} on 127.0.0.1 is busy; stop what uses it or pass --port"
                        if node == 1 and port == ports.plaintext
                        else f"port {port} on 127.0.0.1 (node {node}) is busy; stop what uses it"
                        f" or pass another --data-dir"
                    )
        classpath = resolve_classpath(self.kafka_version)
        launched = []
        try:
            for node in layout.nodes:
                if not self.node_status(node).running:
                    self._launch(java, classpath, layout, node)
                    launched.append(node)
            self._wait_ready(launched)
        except BaseException:
            self._stop_nodes(launched, timeout=10.0)
            raise
        if self.security:
            write_env_file(self.env_path, self.credentials.env(self.listeners["SASL_SSL"]))
        return self.status()

    def _launch(self, java: str, classpath: str, layout: Layout, node: int) -> None:
        """Write the node's config, format its storage the first time, start its JVM."""
        directory = self.node_dir(node)
        directory.mkdir(parents=True, exist_ok=True)
        credentials = self.credentials
        config = directory / "server.properties"
        config.write_text(
            server_properties(
                node,
                layout.nodes,
                directory / "logs",
                certs=None if credentials is None else CertFiles.in_dir(self.data_dir / "tls"),
                plain_jaas=None
                if credentials is None
                else plain_jaas(credentials.user, credentials.password),
            )
        )
        if not (directory / "logs" / "meta.properties").exists():
            extra = scram_args(credentials.user, credentials.password) if credentials else []
            self._format_storage(java, classpath, config, layout.cluster_id, extra)
        with open(self.console_path(node), "ab") as console:
            process = subprocess.Popen(
                [
                    java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC",
                    "-Djava.awt.headless=true",
                    f"-Dkafka.logs.dir={directory}",
                    *logging_args(self.kafka_version, directory),
                    "-cp", classpath, "kafka.Kafka", str(config),
                ],
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                cwd=directory, start_new_session=True,
            )  # fmt: skip
        self._processes[node] = process
        state = {"pid": process.pid, "port": layout.nodes[node].plaintext}
        self._state_path(node).write_text(json.dumps(state))

    def _format_storage(
        self, java: str, classpath: str, config: Path, cluster_id: str, extra: list[str]
    ) -> None:
        done = subprocess.run(
            [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
             "-t", cluster_id, "-c", str(config), "--ignore-formatted", *extra],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            raise KafkaError(f"formatting Kafka storage in {config.parent} failed: {detail[-1]}")

    def _wait_ready(self, nodes: list[int]) -> None:
        """Wait until each of `nodes` answers and reports every node of the cluster live."""
        everyone = set(range(1, self.brokers + 1))
        waiting = list(nodes)
        deadline = time.monotonic() + self.start_timeout
        while waiting:
            node = waiting[0]
            process = self._processes.get(node)
            if process is not None and process.poll() is not None:
                self._state_path(node).unlink(missing_ok=True)
                raise KafkaError(
                    f"the Kafka broker{self._called(node)} exited during start-up"
                    f" (code {process.returncode}); see {self.log_path(node)}"
                    f" and {self.console_path(node)}"
                )
            if asyncio.run(broker_ids(self.address(node))) == everyone:
                waiting.pop(0)
                continue
            if time.monotonic() > deadline:
                raise KafkaError(
                    f"the Kafka broker{self._called(node)} did not answer within"
                    f" {self.start_timeout:.0f}s; see {self.log_path(node)}"
                )
            time.sleep(0.2)

    def _called(self, node: int) -> str:
        return "" if self.brokers == 1 else f" node {node}"

    # -- stop, kill, restart ----------------------------------------------------------------

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop every node: SIGTERM to all, up to `timeout`, then SIGKILL; False if none ran."""
        return self._stop_nodes(list(range(1, self.brokers + 1)), timeout)

    def _stop_nodes(self, nodes: list[int], timeout: float) -> bool:
        pids = {}
        for node in nodes:
            state = self._recorded(node)
            if state is None:
                self._state_path(node).unlink(missing_ok=True)
            else:
                pids[node] = state["pid"]
                with contextlib.suppress(ProcessLookupError):
                    os.kill(state["pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for node, pid in pids.items():
            if not self._wait_gone(node, pid, deadline - time.monotonic()):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_gone(node, pid, 10.0)
            self._state_path(node).unlink(missing_ok=True)
        return bool(pids)

    def kill(self, node: int) -> int:
        """SIGKILL node `node` (a crash, not a shutdown) and return its pid once it is gone."""
        state = self._recorded(node)
        if state is None:
            raise KafkaError(f"node {node} of {self.data_dir} is not running")
        os.kill(state["pid"], signal.SIGKILL)
        if not self._wait_gone(node, state["pid"], 10.0):
            raise KafkaError(f"node {node} (pid {state['pid']}) did not die after SIGKILL")
        self._state_path(node).unlink(missing_ok=True)
        return state["pid"]

    def start_node(self, node: int) -> BrokerStatus:
        """Start node `node` again and return once it answers with every node registered."""
        if self.node_status(node).running:
            return self.node_status(node)
        java = shutil.which("java")
        if java is None:
            raise KafkaError("Java is not on PATH; install a JDK 17 (e.g. openjdk-17-jre-headless)")
        layout = self._read_layout()
        if layout is None:
            raise KafkaError(f"{self.data_dir} holds no cluster; start it first")
        self._launch(java, resolve_classpath(self.kafka_version), layout, node)
        try:
            self._wait_ready([node])
        except BaseException:
            self._stop_nodes([node], timeout=10.0)
            raise
        return self.node_status(node)

    def _wait_gone(self, node: int, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            process = self._processes.get(node)
            if process is not None and process.pid == pid:
                process.poll()  # reap our own child so it does not linger as a zombie
            if not pid_alive(pid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
