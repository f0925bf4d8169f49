"""The benchmark reports a peer that could not run, instead of failing or leaving it out.

A peer whose optional dependency is missing is skipped with the install command to fix it; its
figures are None in the JSON and its row says why.
"""

from __future__ import annotations

from rich.console import Console

from bench.e2e import Drain
from bench.latency import Latency
from bench.peers import Peer, PeerDrain
from bench.report import medians, table
from bench.suite import Config, Result

SKIPPED = "quixstreams is not installed (pip install -e '.[bench]')"


def test_a_peer_without_its_dependency_says_how_to_install_it():
    missing = Peer("x", "X", "bench.peers.x", "", requires="no_such_module_1e4b").missing()
    assert missing is not None and "pip install -e '.[bench]'" in missing
    assert Peer("y", "Y", "bench.peers.y", "").missing() is None


def test_a_skipped_peer_is_none_in_the_json_and_named_in_the_table():
    result = Result(Config(keys=10, pairs=100), keys_seen=10, limit=[10_000.0], naive=[2_000.0])
    result.drains = [Drain(1, 500.0, 0.2, 3.0, 100 << 20, 1 << 20, 10, 20_000, 0.9, 0.4)]
    result.latency = Latency(250.0, 100, 10.0, 20.0, 30.0, 90 << 20)
    result.peers["aiokafka_loop"] = [PeerDrain(5_000.0, 0.02, 1.5, 100, "t")]
    result.peers_not_run["quix"] = f"skipped: {SKIPPED}"

    row = medians(result)
    assert row["aiokafka_loop_pps"] == 5_000.0 and row["aiokafka_loop_over_limit"] == 0.5
    assert row["quix_pps"] is None and row["quix_over_limit"] is None
    assert row["peers_not_run"] == {"quix": f"skipped: {SKIPPED}"}

    console = Console(width=200, record=True)
    console.print(table(result, row))
    text = console.export_text()
    assert "aiokafka loop ÷ limit" in text and "0.500" in text
    assert "Quix Streams" in text and "skipped" in text and SKIPPED in text  # "[bench]" kept
