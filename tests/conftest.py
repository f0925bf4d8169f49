"""Fixtures shared by all tests: real Kafka brokers and unique names.

The broker fixture starts a local Kafka itself (or uses STREAMLEARN_TEST_BROKER when set), of
the version in STREAMLEARN_TEST_KAFKA_VERSION (default 3.9.1). `secure_kafka` (a broker with
SASL_SSL and mTLS listeners) and `kafka_cluster` (3 nodes) start only for tests that use them.
A broker that cannot start is an error, never a skip: integration tests must not pass by absence.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamlearn import testing
from streamlearn.kafka.local import LocalCluster, kafka_for

TEST_KAFKA_VERSION = os.environ.get("STREAMLEARN_TEST_KAFKA_VERSION") or None


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of a broker that runs for the whole test session."""
    external = os.environ.get("STREAMLEARN_TEST_BROKER")
    data_dir = tmp_path_factory.mktemp("kafka")
    with kafka_for(external, data_dir, kafka_version=TEST_KAFKA_VERSION) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One broker with SASL_SSL (PLAIN, SCRAM) and SSL (client cert required) listeners beside
    PLAINTEXT: `.listeners` has their addresses, `.credentials` the user, password and certs."""
    broker = LocalCluster(
        tmp_path_factory.mktemp("secure-kafka"), brokers=1, security=True,
        kafka_version=TEST_KAFKA_VERSION,
    )  # fmt: skip
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def kafka_cluster_of_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A 3-node cluster (replication factor 3, min.insync.replicas 2) shared by a module."""
    cluster = LocalCluster(
        tmp_path_factory.mktemp("kafka-cluster"), brokers=3, kafka_version=TEST_KAFKA_VERSION
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def kafka_cluster(kafka_cluster_of_module: LocalCluster) -> LocalCluster:
    """The module's 3-node cluster with every node running, whatever an earlier test killed."""
    for node in kafka_cluster_of_module.status():
        if not node.running:
            kafka_cluster_of_module.start_node(node.node)
    return kafka_cluster_of_module


@pytest.fixture
def unique() -> callable:
    """Make names no other test uses: `unique("obs")` -> `obs-3f2a9c1b`."""
    return testing.unique


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


def run_cli(
    *args: str, env: dict | None = None, timeout: float = 120, cwd: Path | None = None
) -> Ran:
    """Run `streamlearn ARGS` as a user would: a subprocess of this interpreter's entry point."""
    done = subprocess.run(
        [sys.executable, "-m", "streamlearn", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def assert_one_line_error(ran: Ran) -> None:
    """A user mistake: non-zero exit, exactly one line on stderr, no traceback."""
    assert ran.code != 0, ran
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith("streamlearn: error: "), ran.stderr
    assert "Traceback" not in ran.stderr + ran.stdout
