"""Fixtures shared by all tests: a real Kafka broker and unique names.

The broker fixture starts a local Kafka itself (or uses STREAMLEARN_TEST_BROKER when set).
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
from streamlearn.kafka.local import kafka_for


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of a broker that runs for the whole test session."""
    external = os.environ.get("STREAMLEARN_TEST_BROKER")
    with kafka_for(external, tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


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
