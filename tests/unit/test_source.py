"""Files to events: CSV and JSON Lines (gzip too), malformed rows, and label delays."""

from __future__ import annotations

import gzip

import pytest

from streamlearn.datasets.sales import sales_rows
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
    assert order == [("o", 0), ("o", 10), ("l", 0), ("o", 20), ("l", 10), ("o", 30), ("l", 20),
                     ("o", 40), ("l", 30), ("l", 40)]  # fmt: skip
    assert events[0].value == {"id": 0, "ts": 0.0, "x": {"k": "a", "t": 0}}


def test_ids_from_a_column_and_the_key_stays_a_feature():
    rows = [{"store": "s1", "order": "o-9", "sales": 3}]
    (obs, label) = to_events(rows, Columns("store", "sales", id=("order",)))
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


def _per_key(events) -> dict[str, list]:
    out: dict[str, list] = {}
    for e in events:
        out.setdefault(e.key, []).append((e.kind[0], e.value["id"]))
    return out


def test_a_file_sorted_by_key_gives_each_key_the_sequence_of_one_sorted_by_time():
    rows = sales_rows(keys=4, days=10)
    by_key = sorted(rows, key=lambda r: (r["id"], r["date"]))
    columns = Columns("id", "y", time="date")
    assert _per_key(to_events(by_key, columns, 86400)) == _per_key(to_events(rows, columns, 86400))


def test_a_typo_in_one_time_holds_back_only_its_own_label():
    rows = sales_rows(keys=2, days=6)
    rows[4] = {**rows[4], "date": "2061-01-03"}  # the first key's third day
    per_key = _per_key(to_events(rows, Columns("id", "y", time="date"), 86400))
    day = [None, *(f"2016-01-0{d}" for d in range(1, 7))]
    typo = "2061-01-03"
    # Before the fix the typo's label, due in 2061, held back every label behind it.
    assert per_key[rows[0]["id"]] == [
        ("o", day[1]), ("o", day[2]), ("l", day[1]), ("l", day[2]), ("o", typo), ("o", day[4]),
        ("o", day[5]), ("l", day[4]), ("o", day[6]), ("l", day[5]), ("l", day[6]), ("l", typo),
    ]  # fmt: skip
    assert per_key[rows[1]["id"]] == [
        ("o", day[1]), ("o", day[2]), ("l", day[1]), ("o", day[3]), ("l", day[2]), ("o", day[4]),
        ("l", day[3]), ("o", day[5]), ("l", day[4]), ("o", day[6]), ("l", day[5]), ("l", day[6]),
    ]  # fmt: skip


def test_the_time_is_the_default_id_and_stays_a_feature():
    rows = [{"id": "A_1_001_CA_1", "date": "2016-01-01", "y": 3}]
    obs, label = to_events(rows, Columns("id", "y", time="date"), 86400)
    assert obs.value["id"] == label.value["id"] == "2016-01-01"
    assert obs.value["x"] == {"id": "A_1_001_CA_1", "date": "2016-01-01"}


def test_composite_ids_and_id_columns_that_are_the_key_or_time_stay_features():
    rows = [{"item": "A", "store": "CA_1", "day": 3, "price": 2.5, "y": 1}]
    (obs, _) = to_events(rows, Columns("item", "y", id=("item", "store", "day"), time="day"))
    assert obs.value["id"] == "A/CA_1/3"
    assert obs.value["x"] == {"item": "A", "day": 3, "price": 2.5}  # store was only an id


def test_rows_with_an_empty_id_are_malformed():
    malformed: list[str] = []
    rows = [{"k": "a", "o": None, "y": 1}, {"k": "a", "o": "x1", "y": 2}]
    events = list(to_events(rows, Columns("k", "y", id=("o",)), 0, malformed))
    assert [e.value["id"] for e in events] == ["x1", "x1"] and "empty id" in malformed[0]
