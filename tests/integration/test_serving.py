"""The serving routes on two real workers: a key asked anywhere, predict without learning,
the error answers, the token, and `/metrics` against what was sent."""

from __future__ import annotations

from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families
from river import metrics

from streamlearn.kafka.partitioner import partition_for
from streamlearn.learning.models import load_factory
from streamlearn.testing import TopicReader, produce, until, web_request
from tests.integration.conftest import predictions_by_key, rounds_of_predict_then_learn
from tests.oracle import chick_rows, per_key_predictions

PARTITIONS = 4
BAD_BODIES = (
    (b"{", "not-json"),
    (b"[]", "not-object"),
    ({"y": 1}, "bad-features"),
    ({"x": [1]}, "bad-features"),
    ({"x": {"a": [1]}}, "bad-features"),
)
KEYS = 12  # chicks: enough to land on every partition, few enough for quick rounds


class Team:
    """Two workers seen as one by `rounds_of_predict_then_learn`: their counters summed."""

    def __init__(self, members: list) -> None:
        self.members = members

    def counters(self) -> dict[str, int]:
        total: dict[str, int] = defaultdict(int)
        for member in self.members:
            for name, count in member.counters().items():
                total[name] += count
        return total

    def summaries(self) -> list[dict]:
        return [web_request(f"{base(m)}/dashboard/worker.json")[2] for m in self.members]

    def settled(self) -> bool:
        """Every partition owned by exactly one worker, both with some, none moving."""
        summaries = self.summaries()
        owned = [p for s in summaries for p in s["partitions"]]
        return (
            sorted(owned) == list(range(PARTITIONS))
            and all(s["partitions"] and not s["moving"] for s in summaries)
        )  # fmt: skip


def base(worker) -> str:
    return f"http://127.0.0.1:{worker.web_port}"


def scrape(worker) -> dict[tuple[str, tuple], float]:
    """`{(sample name, sorted labels): value}` from the worker's `/metrics`, parsed by
    prometheus_client's own text parser."""
    status, headers, text = web_request(f"{base(worker)}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def summed(scrapes: list[dict], name: str, **labels: str) -> float:
    wanted = tuple(sorted(labels.items()))
    return sum(s.get((name, wanted), 0.0) for s in scrapes)


async def started_team(workers, **kwargs) -> Team:
    team = Team([workers.start("w1", **kwargs), workers.start("w2", **kwargs)])
    await until(team.settled, 90)
    return team


async def test_any_worker_answers_for_any_key_and_predict_changes_nothing(
    kafka_bootstrap, topics, workers
):
    rows = [row for row in chick_rows() if int(row[0]) <= KEYS]
    by_key = defaultdict(list)
    for row in rows:
        by_key[row[0]].append(row)
    first = [row for key_rows in by_key.values() for row in key_rows[:6]]
    rest = [row for key_rows in by_key.values() for row in key_rows[6:]]
    expected = per_key_predictions(rows, load_factory("linear-regression"))
    team = await started_team(workers)
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await rounds_of_predict_then_learn(kafka_bootstrap, topics, first, team, reader)

        for key, key_rows in by_key.items():
            answers = [web_request(f"{base(w)}/keys/{key}") for w in team.members]
            assert [status for status, _, _ in answers] == [200, 200], answers
            one, other = (body for _, _, body in answers)
            assert one == other  # the same answer, whichever worker was asked
            assert one["partition"] == partition_for(key.encode(), PARTITIONS)
            assert one["worker"] in {base(w) for w in team.members}
            assert one["n_learned"] == 6 and one["pending"] == 0 and one["early"] == 0
            mae = metrics.MAE()
            for (_, _, y), y_pred in zip(key_rows[:6], expected[key], strict=False):
                if y_pred is not None:
                    mae.update(y, y_pred)
            assert one["metric"] == {"name": "MAE", "value": pytest.approx(mae.get())}
            [candidate] = one["candidates"]
            assert candidate["serving"] and candidate["name"] == one["serving"]
            assert set(candidate["model"]["weights"]) <= set(key_rows[0][1])
            assert candidate["model"]["params"]

            # Asked of both workers, many times: the next row's prediction, as River's would be.
            for _ in range(10):
                for worker in team.members:
                    status, _, answer = web_request(
                        f"{base(worker)}/keys/{key}/predict", {"x": key_rows[6][1]}
                    )
                    assert status == 200, answer
                    assert answer["y_pred"] == pytest.approx(expected[key][6], abs=1e-9)
                    assert answer["n_learned"] == 6

        await rounds_of_predict_then_learn(
            kafka_bootstrap, topics, rest, team, reader, first_id=len(first)
        )
        values = reader.values()
    got = predictions_by_key(values)
    for key, predictions in expected.items():  # the Kafka oracle still holds after the asks
        assert got[key] == pytest.approx(predictions, abs=1e-9)

    scrapes = [scrape(w) for w in team.members]
    assert summed(scrapes, "streamlearn_records_total", outcome="predicted") == len(rows)
    assert summed(scrapes, "streamlearn_records_total", outcome="joined") == len(rows)
    assert summed(scrapes, "streamlearn_predictions_total") == len(rows)
    assert summed(scrapes, "streamlearn_learns_total") == len(rows)
    assert summed(scrapes, "streamlearn_prediction_latency_seconds_count") == len(rows)
    assert summed(scrapes, "streamlearn_partitions_owned") == PARTITIONS
    assert all(s[("streamlearn_rebalances_total", ())] >= 1 for s in scrapes)
    assert all(s[("streamlearn_checkpoint_seconds_count", ())] >= 1 for s in scrapes)
    assert summed(scrapes, "streamlearn_keys_in_memory") == KEYS
    labels = (("metric", "MAE"), ("model", "linear-regression"))
    assert all(("streamlearn_candidate_metric", labels) in s for s in scrapes)
    lags = [k for s in scrapes for k in s if k[0] == "streamlearn_consumer_lag"]
    assert len(lags) == 2 * PARTITIONS  # observations and labels, each partition once
    assert not [k for s in scrapes for k in s if "key" in dict(k[1])]  # never one per key


async def test_unknown_key_bad_body_moving_partition_and_dead_letters(
    kafka_bootstrap, topics, workers
):
    team = await started_team(workers)
    bad = [(topics.observations, "k1", b"not json"), (topics.labels, "k1", {"id": 1})]
    await produce(kafka_bootstrap, [(topics.observations, "k1", {"id": 1, "x": {"a": 1.0}}), *bad])
    await until(lambda: team.counters()["consumed"] == 3, 60)
    for worker in team.members:
        status, _, body = web_request(f"{base(worker)}/keys/nobody")
        assert status == 404 and "nobody" in body["error"]
        for payload, reason in BAD_BODIES:
            status, _, body = web_request(f"{base(worker)}/keys/k1/predict", payload)
            assert status == 400 and body["error"].startswith(reason), (payload, body)
        status, _, body = web_request(f"{base(worker)}/keys/k1/predict", {"x": {"a": 2.0}})
        assert status == 200 and body["y_pred"] == 0.0  # nothing learned yet: the model's 0

    # A forwarded request that lands on a worker that does not own the key: the owners are
    # changing under us, so 503 and Retry-After, never a second hop.
    owner = web_request(f"{base(team.members[0])}/keys/k1")[2]["worker"]
    [other] = [w for w in team.members if base(w) != owner]
    status, headers, body = web_request(
        f"{base(other)}/keys/k1", headers={"X-Streamlearn-Forwarded": owner}
    )
    assert status == 503 and headers["Retry-After"] == "1", body

    scrapes = [scrape(w) for w in team.members]
    assert summed(scrapes, "streamlearn_dead_letters_total", reason="not-json") == 1
    assert summed(scrapes, "streamlearn_dead_letters_total", reason="bad-target") == 1
    assert summed(scrapes, "streamlearn_records_total", outcome="dead_lettered") == 2

    # While the partitions move to the one worker left, its answer is 503 with Retry-After.
    survivor, leaving = team.members
    seen = set()

    def asked() -> bool:
        status, headers, _ = web_request(f"{base(survivor)}/keys/k1")
        if status == 503:
            assert headers["Retry-After"] == "1"
        seen.add(status)
        return status == 200 and 503 in seen

    leaving.stop()
    await until(asked, 90, interval=0.01)


async def test_a_token_guards_every_route_but_the_empty_page(kafka_bootstrap, topics, workers):
    worker = workers.start(env={"STREAMLEARN_WEB_TOKEN": "s3cret"})
    await produce(kafka_bootstrap, [(topics.observations, "k", {"id": 1, "x": {"a": 1.0}})])
    await until(lambda: worker.counters()["predicted"] == 1, 60)
    routes = ("/keys/k", "/metrics", "/counters/", "/dashboard/worker.json", "/dashboard/app.json")
    for path in routes:
        for token in (None, "wrong"):
            status, headers, _ = web_request(base(worker) + path, token=token)
            assert status == 401 and headers["WWW-Authenticate"] == "Bearer", path
        assert web_request(base(worker) + path, token="s3cret")[0] == 200, path
    status, _, _ = web_request(f"{base(worker)}/keys/k/predict", {"x": {"a": 1}})
    assert status == 401
    status, _, _ = web_request(f"{base(worker)}/keys/k/predict", {"x": {"a": 1}}, token="s3cret")
    assert status == 200
    assert web_request(f"{base(worker)}/dashboard")[0] == 200  # the page holds no data
