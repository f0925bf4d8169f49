"""The worker's web server on a real worker: where it listens, and what it serves."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

from streamlearn.testing import TopicReader, produce


def listening_addresses(port: int) -> set[str]:
    """The local addresses of TCP sockets listening on `port`, read from the kernel's tables."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
                packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(socket.inet_ntop(family, packed))
    return found


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


async def test_web_server_listens_on_loopback_and_serves_counters_but_no_table(
    kafka_bootstrap, topics, workers
):
    worker = workers.start()
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await produce(kafka_bootstrap, [(topics.observations, "k", {"id": 1, "x": {"a": 1.0}})])
        await reader.read(1)  # the key's state is in the table before its prediction is sent
    assert listening_addresses(worker.web_port) == {"127.0.0.1"}
    base = f"http://127.0.0.1:{worker.web_port}"
    assert status_of(f"{base}/counters/") == 200
    for path in ("/table/state/k/", "/table/", "/router/", "/graph/", "/assignment/"):
        assert status_of(base + path) == 404, path
