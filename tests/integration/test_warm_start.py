"""Warm start on the real broker: `replay --save` over history, `streamlearn load` into a running
worker, then live events; the worker predicts what one replay over history then live predicts.
A forged state is dead-lettered, and a second load without --replace keeps the live states."""

from __future__ import annotations

import csv

import orjson
import pytest

from streamlearn.commands.replay import replay_events
from streamlearn.learning.core import Learner, Selection
from streamlearn.learning.models import load_candidates
from streamlearn.snapshot import DIGEST, MAGIC
from streamlearn.source import Event
from streamlearn.testing import TopicReader, produce, until
from tests.conftest import run_cli
from tests.integration.conftest import rounds_of_predict_then_learn
from tests.integration.test_candidates import events_in_rounds
from tests.oracle import chick_rows

SPECS = ("linear-regression", "knn-regression")
SECRET = {"STREAMLEARN_STATE_SECRET": "a shared secret"}


async def test_a_warm_started_worker_continues_as_replay_over_history_then_live(
    kafka_bootstrap, topics, workers, tmp_path
):
    rows = chick_rows()
    history, live = rows[: 2 * len(rows) // 3], rows[2 * len(rows) // 3 :]
    path = tmp_path / "history.csv"
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "time", "chick", "diet", "weight"])
        for i, (_, x, y) in enumerate(history):
            writer.writerow([i, x["time"], x["chick"], x["diet"], y])
    snapshot = tmp_path / "history.snapshot"
    models = [flag for spec in SPECS for flag in ("--model", spec)]
    ran = run_cli("replay", str(path), "--key", "chick", "--target", "weight", "--id", "id",
                  *models, "--select-min-labels", "2", "--save", str(snapshot),
                  env=SECRET)  # fmt: skip
    assert ran.code == 0, ran.stderr
    keys = len({key for key, _, _ in history})

    worker = workers.start(
        model=",".join(SPECS), extra_args=("--select-min-labels", "2"), env=SECRET
    )
    flags = ["--broker", kafka_bootstrap, "--labels-topic", topics.labels]
    loaded = run_cli("load", str(snapshot), *flags, env=SECRET)
    assert loaded.code == 0, loaded.stderr
    await until(lambda: worker.counters()["loaded"] == keys, 60)
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await rounds_of_predict_then_learn(
            kafka_bootstrap, topics, live, worker, reader, first_id=len(history)
        )
        online = {(v["key"], v["id"]): v for v in reader.values()}

    learner = Learner(load_candidates(SPECS), selection=Selection(0, 2))
    events = []
    for i, (key, x, y) in enumerate(history):
        events += [
            Event("observation", key, {"id": i, "x": x}),
            Event("label", key, {"id": i, "y": y}),
        ]
    events += events_in_rounds(live, first_id=len(history))
    offline = []
    replay_events(events, learner, on_prediction=offline.append)
    expected = [orjson.loads(line) for line in offline[len(history) :]]
    assert len(expected) == len(online) == len(live)
    for record in expected:
        got = online[(record["key"], record["id"])]
        assert (got["model"], got["n_learned"]) == (record["model"], record["n_learned"])
        assert got["y_pred"] == pytest.approx(record["y_pred"], abs=1e-9)
        assert got["candidates"] == pytest.approx(record["candidates"], abs=1e-9)
    assert min(v["n_learned"] for v in online.values()) > 0  # every live key started warm

    # A state with a forged seal, and the snapshot again without --replace: both refused.
    forged = MAGIC + b"\0" * DIGEST + b"k" + b"not even a pickle"
    await produce(kafka_bootstrap, [(topics.labels, "1", forged)])
    assert run_cli("load", str(snapshot), *flags, env=SECRET).code == 0
    async with TopicReader(kafka_bootstrap, topics.dead_letters) as reader:
        await reader.read(1 + keys)
        errors = sorted(v["error"].split(":")[0] for v in reader.values())
    assert errors == ["bad-signature"] + ["key-has-state"] * keys
    assert worker.counters()["loaded"] == keys
