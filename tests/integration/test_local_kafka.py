"""`streamlearn kafka start|status|stop` as subprocesses on a free port and a temp data dir."""

from __future__ import annotations

import json
from pathlib import Path

from streamlearn.kafka.local import free_port, pid_alive
from tests.conftest import assert_one_line_error, run_cli


def test_start_status_stop_leaves_no_process(tmp_path):
    port, data_dir = str(free_port()), str(tmp_path / "kafka")
    started = run_cli("kafka", "start", "--port", port, "--data-dir", data_dir)
    try:
        assert started.code == 0, started.stderr
        assert f"127.0.0.1:{port}" in started.stdout
        named_log = Path(started.stdout.rsplit(", log ", 1)[1].strip())
        assert named_log == tmp_path / "kafka" / "server.log"
        assert named_log.stat().st_size > 0  # the broker's own log, not an empty file
        pid = json.loads((tmp_path / "kafka" / "broker.json").read_text())["pid"]
        assert pid_alive(pid)

        status = run_cli("kafka", "status", "--data-dir", data_dir)
        assert status.code == 0
        assert f"pid {pid}" in status.stdout and f"127.0.0.1:{port}" in status.stdout

        again = run_cli("kafka", "start", "--port", port, "--data-dir", data_dir)
        assert again.code == 0 and "already running" in again.stdout
        assert f"pid {pid}" in again.stdout
    finally:
        stopped = run_cli("kafka", "stop", "--data-dir", data_dir)
    assert stopped.code == 0 and "stopped" in stopped.stdout
    assert not pid_alive(pid)
    after = run_cli("kafka", "status", "--data-dir", data_dir, "--port", port)
    assert after.code == 3 and "not running" in after.stdout
    assert "answers" not in after.stdout


def test_status_of_another_data_dir_points_at_the_broker_on_the_port(tmp_path, kafka_bootstrap):
    port = kafka_bootstrap.rsplit(":", 1)[1]  # the session's broker, started from its own dir
    ran = run_cli("kafka", "status", "--data-dir", str(tmp_path), "--port", port)
    assert ran.code == 3
    assert f"not running from data dir {tmp_path}" in ran.stdout
    assert f"a broker answers on 127.0.0.1:{port}" in ran.stdout


def test_second_broker_on_a_busy_port_fails_in_one_line(tmp_path, kafka_bootstrap):
    port = kafka_bootstrap.rsplit(":", 1)[1]
    ran = run_cli("kafka", "start", "--port", port, "--data-dir", str(tmp_path))
    assert_one_line_error(ran)
    assert "busy" in ran.stderr


def test_stop_when_not_running_says_so(tmp_path):
    ran = run_cli("kafka", "stop", "--data-dir", str(tmp_path))
    assert ran.code == 0 and "not running" in ran.stdout
