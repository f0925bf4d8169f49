"""Tables of per-key metrics for people: the replay summary and the demo's live view."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from streamlearn.commands.replay import ReplayResult
from streamlearn.learning.alerts import alerts
from streamlearn.source import RowReader


def metric_table(
    rows: Iterable[tuple[str, int, Any]], title: str, show: int, overall: Any
) -> Table:
    """The `show` worst and best keys by their metric, then the overall metric.

    `rows` are `(key, n_learned, metric)` with River metrics (`get()`, `bigger_is_better`).
    """
    name = type(overall).__name__
    scored = sorted(
        (r for r in rows if r[2].get() is not None),
        key=lambda r: r[2].get(),
        reverse=not overall.bigger_is_better,
    )  # worst first
    table = Table(title=title)
    table.add_column("key")
    table.add_column("learned", justify="right")
    table.add_column(name, justify="right")
    shown = scored if len(scored) <= 2 * show else [*scored[:show], None, *scored[-show:]]
    for row in shown:
        if row is None:
            table.add_row("…", "", "")
        else:
            table.add_row(row[0], str(row[1]), f"{row[2].get():.4f}")
    table.add_section()
    table.add_row(f"all {len(scored)} keys", "", f"{overall.get():.4f}", style="bold")
    return table


def selection_table(result: ReplayResult) -> Table:
    """Per candidate, its metric over every key as if it served alone and the keys it serves
    at the end; then the metric of what was served, each key by its own leader."""
    name = type(result.overall).__name__
    wins = Counter(result.names[state.leader] for state in result.states.values())
    table = Table(title="candidates (each scored on every prediction it made)")
    table.add_column("candidate")
    table.add_column(name, justify="right")
    table.add_column("keys it serves at the end", justify="right")
    for candidate, metric in result.candidates.items():
        table.add_row(candidate, f"{metric.get():.4f}", str(wins[candidate]))
    table.add_section()
    table.add_row(
        "served (each key's leader)",
        f"{result.overall.get():.4f}",
        str(len(result.states)),
        style="bold",
    )
    return table


def switches_table(result: ReplayResult, show: int) -> Table:
    """The `show` keys whose serving candidate changed most recently, latest first."""
    latest = sorted(result.switches.items(), key=lambda item: item[1].order, reverse=True)
    table = Table(title=f"latest changes of serving candidate ({len(latest)} keys changed)")
    for column in ("key", "at label", "from", "to", "changes"):
        table.add_column(column, justify="right" if column in ("at label", "changes") else "left")
    for key, switch in latest[:show]:
        table.add_row(key, str(switch.n_learned), switch.before, switch.after, str(switch.count))
    return table


def anomaly_table(result: ReplayResult, show: int) -> Table:
    """The `show` keys with the most observations flagged as anomalies, most first."""
    most = sorted(result.flagged.items(), key=lambda item: -item[1].count)
    scored = sum(state.n_learned for state in result.states.values())
    flags = sum(flagged.count for flagged in result.flagged.values())
    table = Table(title=f"anomalies: {flags} of {scored} observations, on {len(most)} keys")
    for column in ("key", "flagged", "scored", "first flagged", "latest flagged"):
        table.add_column(column, justify="right" if column in ("flagged", "scored") else "left")
    for key, flagged in most[:show]:
        scored_here = str(result.states[key].n_learned)
        table.add_row(key, str(flagged.count), scored_here, str(flagged.first), str(flagged.last))
    return table


def drift_table(result: ReplayResult, show: int) -> Table:
    """The `show` keys that drifted most recently (by event time), latest first."""
    drifted = [(key, state.drift) for key, state in result.states.items() if state.drift]
    drifted.sort(key=lambda item: item[1]["ts"], reverse=True)
    table = Table(title=f"drift: {len(drifted)} of {len(result.states)} keys drifted")
    for column in ("key", "drifts", "latest at label", "latest at time"):
        table.add_column(column, justify="left" if column == "key" else "right")
    for key, drift in drifted[:show]:
        table.add_row(key, str(drift["count"]), str(drift["n_learned"]), _moment(drift["ts"]))
    return table


def _moment(ts: float) -> str:
    """Event time as ISO-8601 UTC, seconds precision."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def print_replay(
    result: ReplayResult, show: int, reader: RowReader, out: Path | None, drift: bool = False
) -> None:
    """The replay summary on stdout: counts, the worst and best keys, the overall metric, and
    with several candidates how each did and where the choice changed; for an anomaly
    detector the keys flagged most; with drift detection (`drift`) the keys that drifted."""
    console = Console()
    if result.overall is None:
        console.print(anomaly_table(result, show))
    else:
        rows = [(key, state.n_learned, state.metric) for key, state in result.states.items()]
        title = f"replay with {', '.join(result.names)} (worst keys first)"
        console.print(metric_table(rows, title, show, result.overall))
    if drift:
        console.print(drift_table(result, show))
    if result.candidates:
        console.print(selection_table(result))
        console.print(switches_table(result, show))
    counters = result.counters
    rate = counters["consumed"] / result.seconds if result.seconds else 0.0
    console.print(
        f"{counters['consumed']} events in {result.seconds:.1f}s ({rate:.0f}/s):"
        f" {counters['predicted']} predictions, {counters['learned']} learned,"
        f" {counters['duplicate']} duplicates, {counters['expired']} expired,"
        f" {counters['dead_lettered']} rejected"
    )
    if reader.malformed:
        console.print(reader.summary())
    for letter in result.dead_letters[:3]:
        console.print(f"rejected: {letter['error']}")
    zero = dict.fromkeys(counters, 0)
    for line in alerts(zero, counters, result.examples):
        console.print(f"[bold yellow]warning:[/] {line}", highlight=False)
    if out is not None:
        console.print(f"predictions written to {out}")
