"""Fixtures for tests that run real `streamlearn worker` subprocesses on the test broker."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamlearn.kafka.broker import ensure_topics
from streamlearn.kafka.local import free_port
from streamlearn.kafka.security import PLAINTEXT, Security
from streamlearn.learning.core import Learner
from streamlearn.learning.events import Label, Observation
from streamlearn.learning.models import load_candidates
from streamlearn.settings import Topics
from streamlearn.testing import TopicReader, WorkerProcess, group_lag, produce, until

REPO = Path(__file__).parents[2]
FAULTS = REPO / "tests" / "faults"
PARTITIONS = 4  # fewer than the default 8: quicker rebalances and recoveries in tests


def with_faults(**variables: str) -> dict[str, str]:
    """Worker environment that loads `tests/faults`, with the variables that choose a fault."""
    return {"PYTHONPATH": os.pathsep.join([str(FAULTS), str(REPO)]), **variables}


class Workers:
    """Starts workers of one app on one set of topics; stops every one at the end of the test."""

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        root: Path,
        app_id: str,
        partitions: int,
        security: Security = PLAINTEXT,
    ) -> None:
        self.bootstrap, self.topics, self.root, self.app_id = bootstrap, topics, root, app_id
        self.partitions, self.security = partitions, security
        self.started: list[WorkerProcess] = []

    def make(
        self,
        name: str = "w1",
        model: str = "linear-regression",
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> WorkerProcess:
        worker = WorkerProcess(
            self.bootstrap, self.root / name, free_port(), self.topics, self.app_id,
            model=model, partitions=self.partitions, extra_args=extra_args,
            env={"PYTHONPATH": str(REPO), **(env or {})}, security=self.security,
        )  # fmt: skip
        self.started.append(worker)
        return worker

    def start(self, name: str = "w1", **kwargs) -> WorkerProcess:
        return self.make(name, **kwargs).start()

    async def drained(self, timeout: float = 120.0) -> None:
        """Wait until the app has processed and committed everything on its input topics."""
        inputs = [self.topics.observations, self.topics.labels]
        deadline = asyncio.get_running_loop().time() + timeout
        while (
            lag := await group_lag(self.bootstrap, self.app_id, inputs, security=self.security)
        ) != 0:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{lag} records still not committed after {timeout}s")
            await asyncio.sleep(0.2)

    def stop_all(self) -> None:
        for worker in self.started:
            if worker.process is not None:
                worker.stop()


def topic_flags(kafka_bootstrap: str, topics: Topics) -> list[str]:
    """The flags that point `streamlearn produce` or `tail` at the test's broker and topics."""
    return ["--broker", kafka_bootstrap, "--partitions", str(PARTITIONS),
            "--observations-topic", topics.observations, "--labels-topic", topics.labels,
            "--predictions-topic", topics.predictions, "--dead-letters-topic", topics.dead_letters,
            ]  # fmt: skip


@pytest.fixture
def partitions(request) -> int:
    """The partition count of the test's topics: the module's `PARTITIONS`, else 4."""
    return getattr(request.module, "PARTITIONS", PARTITIONS)


@pytest.fixture
def topics(kafka_bootstrap, unique, partitions) -> Topics:
    """Four fresh topics, created up front so readers can subscribe before a worker starts."""
    names = Topics.with_prefix(unique("t") + ".")
    asyncio.run(ensure_topics(kafka_bootstrap, dict.fromkeys(names.names(), partitions)))
    return names


@pytest.fixture
def workers(kafka_bootstrap, topics, tmp_path, unique, partitions) -> Iterator[Workers]:
    pool = Workers(kafka_bootstrap, topics, tmp_path, unique("app"), partitions)
    yield pool
    pool.stop_all()


async def rounds_of_predict_then_learn(
    bootstrap: str, topics: Topics, rows: list, worker: WorkerProcess, reader: TopicReader,
    first_id: int = 0, security: Security = PLAINTEXT,
) -> None:  # fmt: skip
    """Per key, each label after its observation's prediction and before the key's next one.

    Rows are sent in rounds (the r-th row of every key), waiting for the round's predictions
    before its labels, and for the labels to be learned before the next round.
    """
    by_key: dict[str, list] = {}
    for i, (key, x, y) in enumerate(rows, start=first_id):
        by_key.setdefault(key, []).append((i, x, y))
    depth = max(len(v) for v in by_key.values())
    for r in range(depth):
        batch = [(key, *events[r]) for key, events in by_key.items() if r < len(events)]
        await produce(
            bootstrap, [(topics.observations, k, {"id": i, "x": x}) for k, i, x, _ in batch],
            security=security,
        )  # fmt: skip
        await reader.read(len(batch))
        target = worker.counters()["joined"] + len(batch)
        await produce(
            bootstrap, [(topics.labels, k, {"id": i, "y": y}) for k, i, _, y in batch],
            security=security,
        )  # fmt: skip
        await until(lambda target=target: worker.counters()["joined"] >= target, 60)


def predictions_by_key(values: list[dict]) -> dict[str, list]:
    out: dict[str, list] = {}
    for v in values:
        out.setdefault(v["key"], []).append(v["y_pred"])
    return out


Labelled = list[tuple[str, dict]]  # (key, label value with its features)


def labels_with_features(keys: int, per_key: int) -> Labelled:
    """`per_key` labels for each of `keys` keys, carrying their features: learned as they come."""
    return [
        (f"key-{k}", {"id": i, "y": float(i % 7 + k), "x": {"a": float(i % 5), "b": float(k)}})
        for i in range(per_key)
        for k in range(keys)
    ]


def probes_for(topics: Topics, keys: int) -> list[tuple[str, str, dict]]:
    """One observation per key, id "probe", sent once every label is learned."""
    return [(topics.observations, f"key-{k}", {"id": "probe", "x": {"a": 2.0, "b": float(k)}})
            for k in range(keys)]  # fmt: skip


def check_probes(labels: Labelled, probes: list, answers: dict[str, dict]) -> None:
    """Each key's probe answer (`answers[key]`) comes from River's model after every one of the
    key's labels, each learned once: none lost, none learned twice."""
    learner = Learner(load_candidates(["linear-regression"]))
    for _, key, probe_value in probes:
        state = learner.new_state()
        mine = [(i, value) for i, (label_key, value) in enumerate(labels) if label_key == key]
        for i, value in mine:
            learner.label(state, key, Label(value["id"], value["y"], float(i), value["x"]))
        probe = learner.observe(state, key, Observation("probe", probe_value["x"], 0.0))
        assert answers[key]["n_learned"] == len(mine), key
        assert answers[key]["y_pred"] == pytest.approx(probe.prediction.y_pred, abs=1e-9), key
