"""Bad command lines: one line on stderr, a non-zero exit, never a traceback (no broker needed)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streamlearn.commands.cli import main
from streamlearn.kafka.local import free_port
from tests.conftest import Ran, assert_one_line_error, run_cli

REPO = Path(__file__).parents[2]


@pytest.mark.parametrize(
    "argv",
    [
        ["no-such-command"],
        ["kafka", "start", "--no-such-flag"],
        ["kafka", "start", "--port", "70000"],
        ["kafka", "start", "--port", "abc"],
        ["kafka", "frobnicate"],
    ],
)
def test_bad_arguments_give_one_line_and_non_zero(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("streamlearn: error: "), captured.err
    assert "Traceback" not in captured.err


def test_env_var_is_read_and_named_in_the_error(capsys, monkeypatch):
    monkeypatch.setenv("STREAMLEARN_KAFKA_PORT", "not-a-port")
    assert main(["kafka", "start"]) == 2
    err = capsys.readouterr().err
    assert "STREAMLEARN_KAFKA_PORT" in err and len(err.strip().splitlines()) == 1


def test_entry_point_subprocess_reports_bad_flag_in_one_line():
    assert_one_line_error(run_cli("kafka", "status", "--bogus"))


def test_busy_port_is_one_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        ran = run_cli("kafka", "start", "--port", str(port), "--data-dir", str(tmp_path))
    assert_one_line_error(ran)
    assert "busy" in ran.stderr


def test_missing_java_is_one_line(tmp_path):
    ran = run_cli(
        "kafka", "start", "--port", "1", "--data-dir", str(tmp_path), env={"PATH": "/nonexistent"}
    )
    assert_one_line_error(ran)
    assert "Java" in ran.stderr


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("no-such-preset", "unknown model"),
        ("no_such_module:f", "cannot import"),
        ("json:no_such_attr", "no callable"),
        ("json:dumps", "calling the factory raised"),  # needs an argument
        ("json:JSONDecoder", "lacks predict_one"),
    ],
)
def test_a_bad_model_is_one_line(spec, says, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("k,y\na,1\n")
    ran = run_cli("replay", str(data), "--key", "k", "--target", "y", "--model", spec)
    assert_one_line_error(ran)
    assert says in ran.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--model", "linear-regression", "--model", "nosuch"], "unknown model 'nosuch'"),
        (
            ["--model", "linear-regression,logistic-regression"],
            "all regressors, all classifiers, or one anomaly",
        ),
        (["--model", " , "], "no model given"),
        (["--select-window", "-1"], "--select-window"),
        (["--select-min-labels", "x"], "--select-min-labels"),
    ],
)
def test_a_bad_candidate_list_or_selection_is_one_line(args, says, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("k,y\na,1\n")
    ran = run_cli("replay", str(data), "--key", "k", "--target", "y", *args)
    assert_one_line_error(ran)
    assert says in ran.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--model", "half-space-trees", "--target", "y"], "leave --target out"),
        (["--model", "half-space-trees,linear-regression"], "or one anomaly detector, not a mix"),
        (["--anomaly-quantile", "0.9"], "need an anomaly detector"),
        (["--model", "half-space-trees", "--anomaly-quantile", "1.5"], "--anomaly-quantile"),
        (
            [
                "--model",
                "half-space-trees",
                "--anomaly-quantile",
                "0.9",
                "--anomaly-threshold",
                "0.5",
            ],
            "give one, not both",
        ),
        (["--model", "half-space-trees", "--drift", "adwin"], "not of a detector"),
        (["--target", "y", "--on-drift", "reset"], "--on-drift reset needs a detector"),
        (["--target", "y", "--drift", "kswin"], "--drift"),
    ],
)
def test_anomaly_and_drift_flags_that_do_not_fit_are_one_line(args, says, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("k,y\na,1\n")
    ran = run_cli("replay", str(data), "--key", "k", *args)
    assert_one_line_error(ran)
    assert says in ran.stderr


def test_candidates_from_the_environment_comma_or_space_separated(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("k,v,y\na,1,1\na,2,2\nb,1,5\n")
    out = tmp_path / "p.jsonl"
    for value in ("linear-regression,knn-regression", "linear-regression  knn-regression"):
        ran = run_cli("replay", str(data), "--key", "k", "--target", "y", "--out", str(out),
                      env={"STREAMLEARN_MODEL": value})  # fmt: skip
        assert ran.code == 0, ran.stderr
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert [list(r["candidates"]) for r in records] == [
            ["linear-regression", "knn-regression"]
        ] * 3
        assert "served (each key's leader)" in ran.stdout


def _no_broker() -> str:
    """A broker address where nothing listens, so a worker that reaches the broker fails there."""
    return f"127.0.0.1:{free_port()}"


def test_a_workers_bad_model_is_named_before_the_broker_is_contacted(tmp_path):
    ran = run_cli(
        "worker", "--model", "nosuch", "--broker", _no_broker(), "--data-dir", str(tmp_path),
        "--web-port", str(free_port()),
    )  # fmt: skip
    assert_one_line_error(ran)
    assert "unknown model 'nosuch'" in ran.stderr


def test_a_second_worker_on_a_busy_web_port_fails_in_one_line_before_the_broker(tmp_path):
    with socket.socket() as held:  # the first worker's web server, as far as the port goes
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        ran = run_cli(
            "worker", "--broker", _no_broker(), "--data-dir", str(tmp_path), "--web-port", str(port)
        )
    assert_one_line_error(ran)
    assert f"web port {port} on 127.0.0.1 is in use" in ran.stderr
    assert "--web-port" in ran.stderr


def test_a_web_host_that_is_not_this_machine_fails_in_one_line(tmp_path):
    ran = run_cli(
        "worker", "--broker", _no_broker(), "--data-dir", str(tmp_path),
        "--web-port", str(free_port()), "--web-host", "192.0.2.1",  # TEST-NET-1: nobody's
    )  # fmt: skip
    assert_one_line_error(ran)
    assert "--web-host 192.0.2.1" in ran.stderr


def test_a_web_host_beyond_loopback_needs_a_token(tmp_path):
    args = ("worker", "--broker", _no_broker(), "--data-dir", str(tmp_path),
            "--web-port", str(free_port()), "--web-host", "0.0.0.0")  # fmt: skip
    ran = run_cli(*args, env={"STREAMLEARN_WEB_TOKEN": ""})
    assert_one_line_error(ran)
    assert "--web-host 0.0.0.0 reaches beyond this machine" in ran.stderr
    assert "STREAMLEARN_WEB_TOKEN" in ran.stderr
    with_token = run_cli(*args, env={"STREAMLEARN_WEB_TOKEN": "s3cret"}, timeout=60)
    assert "STREAMLEARN_WEB_TOKEN" not in with_token.stderr  # past it: it fails at the broker


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("STREAMLEARN_MODEL", "nosuch", "unknown model 'nosuch'"),
        ("STREAMLEARN_PARTITIONS", "many", "STREAMLEARN_PARTITIONS"),
    ],
)
def test_faust_worker_with_a_bad_setting_is_one_line(variable, value, says, tmp_path):
    """`faust -A streamlearn.worker.app worker`, Faust's own way in, reports like
    `streamlearn worker`."""
    done = subprocess.run(
        [sys.executable, "-m", "faust", "-A", "streamlearn.worker.app", "worker"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), variable: value},
    )  # fmt: skip
    ran = Ran(done.returncode, done.stdout, done.stderr)
    assert_one_line_error(ran)
    assert ran.code == 2 and says in ran.stderr
