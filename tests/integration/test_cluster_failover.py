"""A 3-broker cluster, replication factor 3, loses a broker mid-stream and gets it back later:
every observation is answered, and every label is learned exactly once."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streamlearn.errors import KafkaError
from streamlearn.kafka.broker import describe_topics, ensure_topics
from streamlearn.settings import Topics
from streamlearn.testing import TopicReader, produce, unique, until
from tests.integration.conftest import Workers, check_probes, labels_with_features, probes_for

PARTITIONS = 4


async def coordinator_of(bootstrap: str, group: str) -> int:
    """The node that coordinates `group`: killing it also moves the group to another broker."""
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await client.start()
    try:
        return await client.find_coordinator(group)
    finally:
        await client.close()


async def test_a_broker_killed_mid_stream_loses_no_prediction_and_no_label(kafka_cluster, tmp_path):
    bootstrap = kafka_cluster.bootstrap
    topics = Topics.with_prefix(unique("failover") + ".")
    factor = await ensure_topics(bootstrap, dict.fromkeys(topics.names(), PARTITIONS))
    found, brokers = await describe_topics(bootstrap, list(topics.names()))
    assert (factor, brokers) == (3, 3)
    assert all(info.replicas == 3 for info in found.values())

    keys, per_key, asks = 20, 300, 50
    labels = labels_with_features(keys, per_key)
    asked = [
        (f"key-{k}", {"id": f"ask-{i}", "x": {"a": 1.0}}) for i in range(asks) for k in range(keys)
    ]
    await produce(bootstrap, [(topics.labels, key, value) for key, value in labels])
    await produce(bootstrap, [(topics.observations, key, value) for key, value in asked])

    workers = Workers(bootstrap, topics, tmp_path, unique("app"), PARTITIONS)
    try:
        worker = workers.start(extra_args=("--checkpoint-interval", "0.5"))
        await until(lambda: worker.counters()["joined"] >= len(labels) // 4, 120)
        victim = await coordinator_of(bootstrap, workers.app_id)
        await asyncio.to_thread(kafka_cluster.kill, victim)
        # Two brokers left: min.insync.replicas=2 still takes writes with acks=all.
        await until(lambda: worker.counters()["joined"] >= len(labels) // 2, 180)
        await asyncio.to_thread(kafka_cluster.start_node, victim)  # waits until it rejoined
        await workers.drained(timeout=180)

        probes = probes_for(topics, keys)
        await produce(bootstrap, probes)
        async with TopicReader(bootstrap, topics.predictions) as reader:
            await reader.wait_until(
                lambda records: sum(b'"probe"' in r.value for r in records) >= keys, 120
            )
            values = reader.values()
        assert worker.running()
        changelog = f"{workers.app_id}-state-changelog"  # Faust creates it, with our factor
        found, _ = await describe_topics(bootstrap, [changelog])
        assert found[changelog].replicas == 3
    finally:
        workers.stop_all()

    by_id: dict[tuple[str, str], list[dict]] = {}
    for value in values:
        by_id.setdefault((value["key"], str(value["id"])), []).append(value)
    for key, value in asked:  # every observation answered; a repeat is the same answer
        answers = by_id[(key, value["id"])]
        assert len({(a["y_pred"], a["n_learned"]) for a in answers}) == 1, answers

    check_probes(labels, probes, {key: by_id[(key, "probe")][-1] for _, key, _ in probes})


async def test_an_existing_topic_with_fewer_replicas_than_asked_is_reported(kafka_cluster, caplog):
    bootstrap = kafka_cluster.bootstrap
    topic = unique("thin")
    assert await ensure_topics(bootstrap, {topic: 2}, replication=1) == 1
    with caplog.at_level("WARNING", logger="streamlearn"):
        assert await ensure_topics(bootstrap, {topic: 2}) == 3
    assert f"topic '{topic}' has replication factor 1, below the 3 asked for" in caplog.text
    with pytest.raises(KafkaError, match="needs 4 brokers; the cluster has 3"):
        await ensure_topics(bootstrap, {topic: 2}, replication=4)
