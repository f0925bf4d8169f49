"""A local 3-node KRaft cluster: `streamlearn kafka start --brokers 3` / status / stop as a user
runs them, and a node SIGKILLed under acks=all traffic while the other two carry on."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from streamlearn.kafka.local import LocalCluster, free_port, pid_alive
from streamlearn.kafka.local.cluster import broker_ids
from streamlearn.testing import wait_for
from tests.conftest import run_cli
from tests.integration.roundtrip import create_topic, read, send


def node_pids(data_dir: Path) -> dict[int, int]:
    return {
        node: json.loads((data_dir / f"node-{node}" / "broker.json").read_text())["pid"]
        for node in (1, 2, 3)
    }


def test_cli_starts_reports_stops_and_restarts_a_three_node_cluster_on_the_same_ports(tmp_path):
    data_dir, port = tmp_path / "cluster", free_port()
    args = ("--data-dir", str(data_dir))
    started = run_cli("kafka", "start", "--brokers", "3", "--port", str(port), *args, timeout=180)
    pids: dict[int, int] = {}
    try:
        assert started.code == 0, started.stderr
        pids = node_pids(data_dir)
        assert all(pid_alive(pid) for pid in pids.values())
        bootstrap = LocalCluster(data_dir).bootstrap
        assert bootstrap.startswith(f"127.0.0.1:{port},") and bootstrap.count(",") == 2
        assert f"bootstrap {bootstrap}" in started.stdout
        for node, pid in pids.items():
            assert f"node {node}: running, pid {pid}" in started.stdout
            assert (data_dir / f"node-{node}" / "server.log").stat().st_size > 0

        status = run_cli("kafka", "status", *args)
        assert status.code == 0, status
        assert all(f"node {n}: running, pid {pid}" in status.stdout for n, pid in pids.items())

        stopped = run_cli("kafka", "stop", *args, timeout=120)
        assert stopped.code == 0 and "stopped (3 nodes)" in stopped.stdout
        assert not any(pid_alive(pid) for pid in pids.values())
        after = run_cli("kafka", "status", *args)
        assert after.code == 3 and "not running (3 nodes" in after.stdout

        # Started again without --brokers or --port: the data dir's recorded layout, same ports.
        again = run_cli("kafka", "start", *args, timeout=180)
        assert again.code == 0, again.stderr
        assert f"bootstrap {bootstrap}" in again.stdout
        pids = node_pids(data_dir)
    finally:
        run_cli("kafka", "stop", *args, timeout=120)
    assert not any(pid_alive(pid) for pid in pids.values())


async def partition_zero(bootstrap: str, topic: str) -> dict:
    """Leader, replicas and ISR of partition 0, as the broker answering knows them so far."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        found = [p for p in described["partitions"] if p["partition"] == 0]
        return found[0] if found else {"leader": -1, "replicas": [], "isr": []}
    finally:
        await admin.close()


async def isr_of(bootstrap: str, topic: str) -> list[int]:
    return (await partition_zero(bootstrap, topic))["isr"]


async def eventually(get, accept, timeout: float = 60.0):
    """Poll `await get()` until `accept` takes its value; the last value on timeout too."""
    deadline = time.monotonic() + timeout
    while not accept(value := await get()) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return value


async def test_killing_a_node_loses_no_acked_record_and_the_node_rejoins(kafka_cluster, unique):
    topic = unique("replicated")
    bootstrap = kafka_cluster.bootstrap
    await create_topic(bootstrap, topic, replication=3)
    before = await eventually(
        lambda: partition_zero(bootstrap, topic), lambda p: sorted(p["isr"]) == [1, 2, 3]
    )
    assert sorted(before["replicas"]) == [1, 2, 3]
    for i in range(10):
        await send(bootstrap, topic, f"before-{i}".encode())

    leader = before["leader"]
    pid = kafka_cluster.kill(leader)  # SIGKILL the partition's leader: its followers must take over
    assert not pid_alive(pid)
    assert not kafka_cluster.node_status(leader).running
    for i in range(10):  # acks=all with min.insync.replicas=2: the two survivors suffice
        await send(bootstrap, topic, f"after-{i}".encode(), request_timeout_ms=30000)
    expected = [f"before-{i}".encode() for i in range(10)] + [
        f"after-{i}".encode() for i in range(10)
    ]
    assert await read(bootstrap, topic, 20) == expected
    assert (await partition_zero(bootstrap, topic))["leader"] != leader

    restarted = await asyncio.to_thread(kafka_cluster.start_node, leader)
    assert restarted.running and restarted.pid != pid
    assert await broker_ids(kafka_cluster.address(leader)) == {1, 2, 3}
    # The restarted node catches up and is back in the partition's in-sync replicas.
    isr = await eventually(lambda: isr_of(bootstrap, topic), lambda isr: sorted(isr) == [1, 2, 3])
    assert sorted(isr) == [1, 2, 3]
    assert await read(bootstrap, topic, 20) == expected


def test_sigterm_during_a_cluster_start_stops_the_nodes_it_launched(tmp_path):
    data_dir = tmp_path / "cluster"
    starting = subprocess.Popen(
        [sys.executable, "-m", "streamlearn", "kafka", "start", "--brokers", "3",
         "--port", str(free_port()), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # Interrupt once a node's JVM is launched and before the cluster is ready.
        wait_for(lambda: (data_dir / "node-2" / "broker.json").exists(), 120)
        launched = {
            n: json.loads(p.read_text())["pid"]
            for n in (1, 2)
            if (p := data_dir / f"node-{n}" / "broker.json").exists()
        }
        starting.send_signal(signal.SIGTERM)
        out, err = starting.communicate(timeout=60)
    finally:
        if starting.poll() is None:
            starting.kill()
        LocalCluster(data_dir).stop(timeout=10)
    assert starting.returncode == 130, (out, err)
    assert err.strip().splitlines()[-1] == "streamlearn: interrupted"
    assert "Traceback" not in err
    assert launched and not any(pid_alive(pid) for pid in launched.values())
