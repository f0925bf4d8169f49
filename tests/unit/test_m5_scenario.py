"""The second founding article's scenario offline: M5-like daily sales, one model per product.

A new user lost most of the learning here without a word (issue: "nothing a user feeds in may
silently stop a key from learning"). Every label must be learned whatever the file order, one
typo'd date and one event without "ts", and replay must say so when the model sees no feature.
"""

from __future__ import annotations

import csv

import orjson
import pytest

from streamlearn.commands.replay import replay_events
from streamlearn.datasets.sales import sales_ids, sales_rows
from streamlearn.learning.core import Learner
from streamlearn.learning.models import load_candidates
from streamlearn.source import Columns, Event, to_events
from tests.conftest import assert_one_line_error, run_cli

KEYS, DAYS = 30, 40
DAY = 86400.0
COLUMNS = Columns("id", "y", time="date")


def scenario(sort_by_id: bool) -> list[Event]:
    """The sales rows (one date typo'd to 2061), each label a day late; one key also gets an
    observation and a label without "ts", as from a producer that forgot it."""
    rows = sales_rows(KEYS, DAYS)
    if sort_by_id:
        rows.sort(key=lambda row: (row["id"], row["date"]))
    key, typo = sales_ids(KEYS)[:2]
    at = rows.index(next(r for r in rows if (r["id"], r["date"]) == (typo, "2016-01-11")))
    rows[at] = {**rows[at], "date": "2061-01-11"}
    events = list(to_events(rows, COLUMNS, delay=DAY))
    at = next(i for i, e in enumerate(events) if e.key == key and e.value["id"] == "2016-01-20")
    untimed = {"id": "no-ts", "x": {"id": key, "date": "2016-01-20"}}
    events[at:at] = [
        Event("observation", key, untimed),
        Event("label", key, {"id": "no-ts", "y": 4}),
    ]
    return events


def predictions(events: list[Event]):
    lines: list[bytes] = []
    learner = Learner(load_candidates(["m5"]))
    result = replay_events(events, learner, on_prediction=lines.append)
    by_key: dict[str, list] = {}
    for line in lines:
        p = orjson.loads(line)
        by_key.setdefault(p["key"], []).append((p["id"], p["n_learned"], p["y_pred"]))
    return result, by_key


@pytest.mark.parametrize("sort_by_id", [False, True], ids=["date-sorted", "id-sorted"])
def test_every_label_is_learned_whatever_the_order_the_typo_and_the_missing_ts(sort_by_id):
    result, _ = predictions(scenario(sort_by_id))
    counters = result.counters
    assert counters["learned"] == KEYS * DAYS + 1, counters  # before the fix: a fraction
    assert counters["expired"] == 0 and counters["dead_lettered"] == 0
    assert counters["mixed_time"] == 2  # the two events without "ts", each reported


def test_a_file_sorted_by_id_predicts_exactly_as_one_sorted_by_date():
    _, by_date = predictions(scenario(sort_by_id=False))
    _, by_id = predictions(scenario(sort_by_id=True))
    assert by_id.keys() == by_date.keys()
    for key, expected in by_date.items():
        assert [p[:2] for p in by_id[key]] == [p[:2] for p in expected]
        assert [p[2] for p in by_id[key]] == pytest.approx([p[2] for p in expected], abs=1e-9)


@pytest.fixture
def sales_csv(tmp_path):
    path = tmp_path / "sales.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["id", "date", "y"])
        writer.writeheader()
        writer.writerows(sales_rows(keys=6, days=10))
    return path


def test_replay_warns_when_the_model_sees_no_feature(sales_csv):
    flags = ["--key", "id", "--target", "y", "--time", "date", "--label-delay", "1d"]
    ran = run_cli("replay", str(sales_csv), *flags, "--model", "linear-regression")
    assert ran.code == 0, ran.stderr
    assert "warning: 60 observations had no feature the model can use" in ran.stdout
    ran = run_cli("replay", str(sales_csv), *flags, "--model", "m5")
    assert ran.code == 0 and "warning" not in ran.stdout, ran.stdout


def test_a_replay_that_learns_nothing_because_every_label_was_rejected_fails(sales_csv):
    ran = run_cli("replay", str(sales_csv), "--key", "id", "--target", "date", "--model", "m5")
    assert_one_line_error(ran)  # before the fix: exit 0
    assert "nothing was learned" in ran.stderr and "bad-target" in ran.stderr
