"""Files to events: CSV and JSON Lines (gzip too), malformed rows, and label delays."""

from __future__ import annotations

import gzip

import pytest

from streamlearn.errors import ConfigError
from streamlearn.source import Columns, RowReader, check_columns, parse_delay, to_events


def write(path, text: str):
    path.write_text(text)
    return path


def test_csv_cells_become_json_scalars(tmp_path):
    path = write(tmp_path / "a.csv", "key,n,f,s,e,y\nk1,3,2.5,abc,,7\n")
    assert list(RowReader(path)) == [{"key": "k1", "n": 3, "f": 2.5, "s": "abc", "e": None, "y": 7}]


def test_malformed_csv_rows_are_counted_and_the_rest_kept(tmp_path):
    path = write(tmp_path / "a.csv", "key,x,y\nk,1,2\nk,1\nk,1,2,3\nk,4,5\n")
    reader = RowReader(path)
    assert [row["x"] for row in reader] == [1, 4]
    assert len(reader.malformed) == 2 and "line 3" in reader.malformed[0]


def test_gzip_jsonl_rows_and_bad_lines(tmp_path):
    path = tmp_path / "a.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write('{"key": "k", "y": 1}\nnot json\n[1]\n\n{"key": "k", "y": 2}\n')
    reader = RowReader(path)
    assert [row["y"] for row in reader] == [1, 2]
    assert len(reader.malformed) == 2
    assert reader.header() == ["key", "y"]


def test_unknown_columns_and_files_are_one_clear_error(tmp_path):
    path = write(tmp_path / "a.csv", "key,y\nk,1\n")
    with pytest.raises(ConfigError, match="no column 'target'"):
        check_columns(RowReader(path), Columns(key="key", target="target"))
    with pytest.raises(ConfigError, match="no such file"):
        RowReader(tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match=r"\.csv or \.jsonl"):
        RowReader(write(tmp_path / "a.txt", "x"))


def test_count_delay_sends_each_label_after_n_more_observations():
    rows = [{"k": "a", "y": i} for i in range(4)]
    kinds = [(e.kind[0], e.value["id"]) for e in to_events(rows, Columns("k", "y"), delay=2)]
    assert kinds == [("o", 0), ("o", 1), ("o", 2), ("l", 0), ("o", 3), ("l", 1), ("l", 2), ("l", 3)]


def test_time_delay_sends_labels_once_event_time_has_passed():
    rows = [{"k": "a", "t": t, "y": t} for t in (0, 10, 20, 30, 40)]
    events = list(to_events(rows, Columns("k", "y", time="t"), delay=15))
    order = [(e.kind[0], e.value["id"]) for e in events]
    # label 0 is due at 15: the truth is known before the observation at 20
    assert order == [("o", 0), ("o", 1), ("l", 0), ("o", 2), ("l", 1), ("o", 3), ("l", 2),
                     ("o", 4), ("l", 3), ("l", 4)]  # fmt: skip
    assert events[0].value == {"id": 0, "ts": 0.0, "x": {"k": "a", "t": 0}}


def test_ids_from_a_column_and_the_key_stays_a_feature():
    rows = [{"store": "s1", "order": "o-9", "sales": 3}]
    (obs, label) = to_events(rows, Columns("store", "sales", id="order"))
    assert obs.value == {"id": "o-9", "x": {"store": "s1"}} and label.value["y"] == 3


def test_rows_without_key_target_or_time_are_malformed():
    malformed: list[str] = []
    rows = [
        {"k": None, "y": 1, "t": 0},
        {"k": "a", "y": None, "t": 0},
        {"k": "a", "y": 1, "t": "?"},
    ]
    assert list(to_events(rows, Columns("k", "y", time="t"), 0, malformed)) == []
    assert len(malformed) == 3


@pytest.mark.parametrize(
    ("text", "by_time", "seconds"),
    [("3", False, 3), ("90s", True, 90), ("30m", True, 1800), ("2h", True, 7200),
     ("1d", True, 86400), ("45", True, 45)],
)  # fmt: skip
def test_delays(text, by_time, seconds):
    assert parse_delay(text, by_time) == seconds


@pytest.mark.parametrize(("text", "by_time"), [("2h", False), ("1.5", False), ("soon", True)])
def test_bad_delays(text, by_time):
    with pytest.raises(ConfigError):
        parse_delay(text, by_time)
