"""`python -m bench --quick` runs end to end and produces every figure, the peers' too, so it
cannot rot.

It checks that each figure is there and numeric, never its value: the values depend on the
machine and its load.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import orjson

REPO = Path(__file__).parents[2]
POSITIVE = (
    "limit_pps", "naive_pps", "e2e_pps", "e2e_over_limit", "e2e_over_naive", "p50_ms", "p95_ms",
    "p99_ms", "bytes_per_key", "state_bytes_per_key", "rss_peak_mb", "scale2_pps", "cpus",
    "startup_s", "drain_s", "aiokafka_loop_pps", "aiokafka_loop_over_limit",
)  # fmt: skip
QUIX = ("quix_pps", "quix_over_limit")  # only with the bench extra, which the test extra has
NUMERIC = ("rss_bytes_per_key",)  # may be negative: memory can be returned after start-up


def test_quick_run_writes_every_figure(kafka_bootstrap, tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--broker", kafka_bootstrap, "--json", out],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=180,  # about 50 s alone on 2 cores; the peers' drains are in it
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "end to end ÷ limit" in done.stdout and "aiokafka loop ÷ limit" in done.stdout
    document = orjson.loads(out.read_bytes())
    assert document["date"] and document["cpus"] >= 1
    (row,) = document["configurations"]
    assert row["model"] == "linear-regression" and row["keys"] > 0 and row["pairs"] > 0
    quix = importlib.util.find_spec("quixstreams") is not None
    for name in POSITIVE + (QUIX if quix else ()):
        assert _number(row[name]) and row[name] > 0, (name, row[name])
    assert set(row["peers_not_run"]) == (set() if quix else {"quix"})  # skipped, not failed
    for name in NUMERIC:
        assert _number(row[name]), (name, row[name])


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_a_short_soak_kills_a_worker_and_audits_every_prediction(kafka_bootstrap, tmp_path):
    """`python -m bench.soak` cannot rot: 30 s of flow, one kill or stop (seed 18: at 17.7 s)."""
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--duration", "30", "--keys", "10", "--rate", "50",
         "--broker", kafka_bootstrap, "--json", out],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = orjson.loads(out.read_bytes())
    assert figures["problems"] == [] and "1,510 observations" in figures["audit"]
    assert figures["sigkills"] + figures["sigterms"] == 1 and figures["restarts_ready"] == 1
    assert figures["paused_pct"] < 25 and figures["ready_max_s"] > 0
