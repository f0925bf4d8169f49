"""The user's path as subprocesses on the real broker: produce, replay, and their errors."""

from __future__ import annotations

import itertools
import time

import orjson
import pytest

from streamlearn.datasets.bikes import bike_stream, write_csv
from streamlearn.source import Columns, RowReader, to_events
from streamlearn.testing import TopicReader, produce, until
from tests.conftest import assert_one_line_error, run_cli
from tests.integration.conftest import topic_flags


@pytest.fixture
def bikes_csv(tmp_path):
    path = tmp_path / "bikes.csv"
    rows = write_csv(path, bike_stream(stations=4, days=2))
    return path, rows


async def test_produce_sends_every_row_as_observation_and_label(kafka_bootstrap, topics, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("station,t,bikes\ns1,1,3\ns2,1,4\ns1,2\ns1,2,5\n")  # line 4 is malformed
    ran = run_cli("produce", str(path), "--key", "station", "--target", "bikes",
                  "--label-delay", "1", *topic_flags(kafka_bootstrap, topics))  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert "sent 3 observations" in ran.stdout and "3 labels" in ran.stdout
    assert "skipped 1 of 4 rows as malformed (first: line 4" in ran.stderr
    assert "the event ids are row numbers" in ran.stderr  # no --id, no --time: said once
    async with TopicReader(kafka_bootstrap, topics.observations) as reader:
        records = await reader.read(3)
        observations = [(r.key, v) for r, v in zip(records, reader.values(), strict=True)]
    assert {key for key, _ in observations} == {b"s1", b"s2"}
    assert observations[0][1] == {"id": 0, "x": {"station": "s1", "t": 1}}
    async with TopicReader(kafka_bootstrap, topics.labels) as reader:
        await reader.read(3)
        assert sorted(v["y"] for v in reader.values()) == [3, 4, 5]


async def test_replay_and_worker_give_identical_predictions(
    kafka_bootstrap, topics, workers, tmp_path
):
    path = tmp_path / "bikes.csv"
    rows = write_csv(path, bike_stream(stations=3, days=1))
    columns = Columns("station", "bikes")
    worker = workers.start(model="bikes")
    # Kafka orders a key's records within each topic, not across the two topics: wait for the
    # worker at every switch between them, so it sees the events in the file's order.
    events = list(to_events(RowReader(path), columns, delay=4))
    sent = 0
    for kind, group in itertools.groupby(events, key=lambda e: e.kind):
        topic = topics.observations if kind == "observation" else topics.labels
        sent += await produce(kafka_bootstrap, [(topic, e.key, e.value) for e in group])
        await until(lambda sent=sent: worker.counters()["consumed"] == sent, 30, interval=0.01)

    out = tmp_path / "replay.jsonl"
    replayed = run_cli("replay", str(path), "--key", "station", "--target", "bikes",
                       "--label-delay", "4", "--model", "bikes", "--out", str(out))  # fmt: skip
    assert replayed.code == 0, replayed.stderr
    assert f"{2 * rows} events" in replayed.stdout and "all 3 keys" in replayed.stdout
    offline = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await reader.read(rows)
        online = {p["id"]: p for p in reader.values()}
    assert len(offline) == rows == len(online)
    for p in offline:
        assert (online[p["id"]]["key"], online[p["id"]]["n_learned"]) == (p["key"], p["n_learned"])
        assert online[p["id"]]["y_pred"] == pytest.approx(p["y_pred"], abs=1e-9)


async def test_produced_label_delay_keeps_labels_behind_their_observations(
    kafka_bootstrap, topics, workers, bikes_csv
):
    path, rows = bikes_csv
    worker = workers.start(model="bikes")
    flags = topic_flags(kafka_bootstrap, topics)
    ran = run_cli("produce", str(path), "--key", "station", "--target", "bikes",
                  "--label-delay", "20", "--rate", "300", *flags)  # fmt: skip
    assert ran.code == 0, ran.stderr
    await until(lambda: worker.counters()["learned"] == rows, 60)
    counters = worker.counters()
    assert counters["waiting"] == 0  # no label reached the worker before its observation
    assert counters["predicted"] == rows


@pytest.mark.parametrize("command", ["produce", "replay"])
def test_missing_file_and_unknown_column_are_one_line(command, bikes_csv, tmp_path):
    path, _ = bikes_csv
    broker = ["--broker", "127.0.0.1:1"] if command == "produce" else []
    missing = run_cli(command, str(tmp_path / "nope.csv"), "--key", "station", "--target", "bikes",
                      *broker)  # fmt: skip
    assert_one_line_error(missing)
    assert "no such file" in missing.stderr
    unknown = run_cli(command, str(path), "--key", "stationz", "--target", "bikes", *broker)
    assert_one_line_error(unknown)
    assert "no column 'stationz'" in unknown.stderr


def test_produce_to_a_broker_that_does_not_answer_fails_fast(bikes_csv):
    path, _ = bikes_csv
    started = time.monotonic()
    ran = run_cli("produce", str(path), "--key", "station", "--target", "bikes",
                  "--broker", "127.0.0.1:1")  # fmt: skip
    assert_one_line_error(ran)
    assert "no Kafka broker answers at 127.0.0.1:1" in ran.stderr
    assert time.monotonic() - started < 15


def test_replay_reports_metrics_per_key_and_overall(bikes_csv):
    path, rows = bikes_csv
    ran = run_cli("replay", str(path), "--key", "station", "--target", "bikes", "--time", "moment",
                  "--label-delay", "1h", "--model", "bikes", "--show", "1")  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert "MAE" in ran.stdout and "all 4 keys" in ran.stdout
    assert f"{rows} predictions, {rows} learned" in ran.stdout
    assert "…" in ran.stdout  # with --show 1, the middle keys are elided
