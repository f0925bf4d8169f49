"""`streamlearn demo` end to end, and interrupted: it stops everything it started."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import orjson

from streamlearn.datasets.bikes import bike_stream, write_csv
from streamlearn.kafka.local import free_port, pid_alive
from streamlearn.testing import READY_LINE, record_count, wait_for
from tests.conftest import run_cli


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains `text`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and pid_alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def test_demo_end_to_end_on_a_running_broker(kafka_bootstrap, tmp_path):
    ran = run_cli("demo", "--broker", kafka_bootstrap, "--stations", "3", "--days", "2",
                  "--rate", "1000", "--partitions", "4", "--out", str(tmp_path))  # fmt: skip
    assert ran.code == 0, ran.stderr + ran.stdout
    rows = 3 * 2 * 24
    assert f"sent {rows} observations and {rows} labels; received {rows} predictions" in ran.stdout
    mae = re.search(
        r"over all predictions: ([\d.]+) \(day 1: ([\d.]+), day 2: ([\d.]+)\)", ran.stdout
    )
    assert mae is not None, ran.stdout
    assert len((tmp_path / "predictions.jsonl").read_bytes().splitlines()) == rows
    assert "streamlearn tail --predictions-topic demo-" in ran.stdout  # the broker is still up
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/dashboard", ran.stdout), ran.stdout
    assert processes_mentioning("streamlearn-demo-") == []


def test_demo_interrupted_stops_its_worker_and_its_kafka(tmp_path):
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "streamlearn", "demo", "--broker", f"127.0.0.1:{port}",
         "--rate", "50", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        log = tmp_path / "worker.log"
        wait_for(lambda: log.exists() and READY_LINE in log.read_text(), 120)
        assert len(processes_mentioning("streamlearn-demo-")) >= 2  # its Kafka and its worker
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 130, out + err
    assert "Traceback" not in out + err
    assert processes_mentioning("streamlearn-demo-") == []


def test_produce_interrupted_says_how_many_events_were_sent(kafka_bootstrap, tmp_path, unique):
    path = tmp_path / "bikes.csv"
    write_csv(path, bike_stream(stations=5, days=5))
    prefix = unique("p") + "."
    produce = subprocess.Popen(
        [sys.executable, "-m", "streamlearn", "produce", str(path), "--key", "station",
         "--target", "bikes", "--rate", "40", "--broker", kafka_bootstrap,
         "--topic-prefix", prefix, "--partitions", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, err = "", ""
    try:
        # Wait until it is sending (its topics exist), then interrupt.
        observations = prefix + "observations"
        wait_for(lambda: asyncio.run(record_count(kafka_bootstrap, observations)) > 0, 60, 0.2)
        produce.send_signal(signal.SIGINT)
        out, err = produce.communicate(timeout=30)
    finally:
        if produce.poll() is None:
            produce.kill()
    assert produce.returncode == 130, out + err
    sent = re.search(r"interrupted after (\d+) events", err)
    assert sent is not None and 0 < int(sent.group(1)) < 2 * 5 * 5 * 24
    assert "Traceback" not in err
    assert re.search(r"sent \d+ observations", out) is not None


def test_demo_with_an_anomaly_detector_reports_the_injected_fault(kafka_bootstrap, tmp_path):
    ran = run_cli("demo", "--broker", kafka_bootstrap, "--stations", "3", "--days", "4",
                  "--rate", "1000", "--partitions", "4", "--out", str(tmp_path),
                  "--model", "bikes-anomaly", "--anomaly-quantile", "0.95",
                  "--fault", "station-01:60:12")  # fmt: skip
    assert ran.code == 0, ran.stderr + ran.stdout
    rows = 3 * 4 * 24
    assert f"sent {rows} observations and 0 labels; received {rows} predictions" in ran.stdout
    fault = r"fault at station-01 from hour 60 for 12 h: (first flagged after \d+ h|never flagged)"
    assert re.search(fault + r", \d+ of its hours flagged", ran.stdout), ran.stdout
    assert re.search(rf"false alarms: \d+ of {rows - 12} observations", ran.stdout), ran.stdout
    flags = [orjson.loads(line)["is_anomaly"] for line in
             (tmp_path / "predictions.jsonl").read_bytes().splitlines()]  # fmt: skip
    assert len(flags) == rows and any(flags)
