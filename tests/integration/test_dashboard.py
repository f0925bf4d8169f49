"""The dashboard in a real headless browser (Debian's chromium), while two workers learn."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

from streamlearn.testing import produce, until
from tests.integration.test_serving import Team, base, started_team

PARTITIONS = 4
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=4000")


def browse(url: str, *args: str) -> str:
    """What chromium shows at `url` after its scripts ran a few seconds: the DOM, or with
    `--screenshot=…` its own messages."""
    ran = subprocess.run(
        [CHROMIUM, *FLAGS, *args, url], capture_output=True, text=True, timeout=120, check=True
    )
    return ran.stdout


def tile(dom: str, name: str) -> str:
    """The number a dashboard tile shows, as text."""
    found = re.search(rf'<b id="{name}">([^<]*)</b>', dom)
    assert found, dom[:3000]
    return found.group(1)


async def events(bootstrap: str, topics, first: int, last: int) -> None:
    """Observations `first`..`last`-1 over ten keys, each followed by its label."""
    rows = []
    for i in range(first, last):
        key = f"k{i % 10}"
        rows.append((topics.observations, key, {"id": i, "x": {"a": float(i % 7)}}))
        rows.append((topics.labels, key, {"id": i, "y": 2.0 * (i % 7) + i % 10}))
    await produce(bootstrap, rows)


async def test_the_dashboard_shows_both_workers_live(kafka_bootstrap, topics, workers, tmp_path):
    team: Team = await started_team(workers)
    page = f"{base(team.members[0])}/dashboard"
    await events(kafka_bootstrap, topics, 0, 40)
    await until(lambda: team.counters()["learned"] == 40, 60)

    dom = await asyncio.to_thread(browse, page, "--dump-dom")
    assert tile(dom, "workers") == "2 of 2"
    assert tile(dom, "consumed") == "80" == str(team.counters()["consumed"])
    assert tile(dom, "learned") == "40"
    assert all(f"<td>{base(w)}</td>" in dom for w in team.members)  # each worker's row
    assert "linear-regression" in dom and "<td>k" in dom  # the metric's legend, keys ranked

    await events(kafka_bootstrap, topics, 40, 100)
    await until(lambda: team.counters()["learned"] == 100, 60)
    dom = await asyncio.to_thread(browse, page, "--dump-dom")
    assert tile(dom, "consumed") == "200" == str(team.counters()["consumed"])
    assert tile(dom, "predicted") == "100" and tile(dom, "learned") == "100"

    dom = await asyncio.to_thread(browse, page + "#key=k3", "--dump-dom")  # the key search
    assert "HTTP 200" in dom and '"n_learned": 10' in dom and '"key": "k3"' in dom

    shot = Path(tmp_path) / "dashboard.png"
    size = "--window-size=1280,1000"
    await asyncio.to_thread(browse, page + "#key=k3", f"--screenshot={shot}", size)
    assert shot.stat().st_size > 10_000
