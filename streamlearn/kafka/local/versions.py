"""The Kafka versions `streamlearn kafka start` can run: one pom and one cached classpath each.

3.9.1 stays the default: the last 3.x line, the one the clients (aiokafka 0.14, faust-streaming
0.15) are used against most. 4.1.1 is pinned for users whose clusters run 4.x (log4j2, no
ZooKeeper, Metadata v0-3 back since KAFKA-18648 so aiokafka still bootstraps).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from streamlearn.errors import KafkaError

HERE = Path(__file__).parent
DEFAULT_VERSION = "3.9.1"
VERSIONS = ("3.9.1", "4.1.1")  # each has pom-<version>.xml beside this file
VERSION_ENV = "STREAMLEARN_KAFKA_VERSION"


def check_version(version: str) -> str:
    """`version` when streamlearn pins it, else a one-line `KafkaError` listing the pinned ones."""
    if version not in VERSIONS:
        raise KafkaError(
            f"Kafka {version} is not one streamlearn can run; pick one of {', '.join(VERSIONS)}"
        )
    return version


def pom_path(version: str) -> Path:
    """The pom that resolves `version`'s broker jars and the logging backend it needs."""
    return HERE / f"pom-{check_version(version)}.xml"


def logging_args(version: str, logs_dir: Path) -> list[str]:
    """JVM flags that send the broker's log to `logs_dir`/server.log: reload4j on 3.x, log4j2
    on 4.x, each quiet in the same way."""
    if check_version(version).startswith("3."):
        return [f"-Dlog4j.configuration=file:{HERE / 'log4j.properties'}"]
    return [f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}"]


def cache_dir() -> Path:
    """Where the resolved Kafka classpath is cached between starts."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "streamlearn"


def resolve_classpath(version: str = DEFAULT_VERSION) -> str:
    """The broker's classpath: from the cache when its jars still exist, else from Maven."""
    pom = pom_path(version)
    cached = cache_dir() / f"kafka-{version}.classpath"
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
            mvn, "-q", "-B", "-f", str(pom), "dependency:build-classpath",
            "-Dmdep.includeScope=runtime", f"-Dmdep.outputFile={cached}",
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if done.returncode != 0 or not cached.exists():
        lines = (done.stdout + done.stderr).strip().splitlines() or ["no output"]
        error = next((line for line in lines if "ERROR" in line), lines[-1])
        raise KafkaError(f"Maven could not resolve Kafka {version}: {error.strip()}")
    return cached.read_text().strip()
