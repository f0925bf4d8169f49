"""docker-compose.yml cannot run here (no Docker engine): check its structure and settings."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())


def test_kafka_service_is_a_single_kraft_node_with_the_settings_streamlearn_needs():
    env = COMPOSE["services"]["kafka"]["environment"]
    assert COMPOSE["services"]["kafka"]["image"].startswith("apache/kafka:3.9")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in env["KAFKA_LISTENERS"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == 0
    for key in ("OFFSETS_TOPIC_REPLICATION_FACTOR", "TRANSACTION_STATE_LOG_MIN_ISR"):
        assert env[f"KAFKA_{key}"] == 1
    for listener in env["KAFKA_ADVERTISED_LISTENERS"].split(","):
        name = listener.split(":", 1)[0]
        assert f"{name}:" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]


def test_topics_share_the_workers_partition_count():
    script = COMPOSE["services"]["topics"]["command"][0]
    partitions = COMPOSE["services"]["worker"]["environment"]["STREAMLEARN_PARTITIONS"]
    assert f"--partitions {partitions}" in script
    for topic in ("observations", "labels", "predictions", "dead-letters"):
        assert topic in script


def test_worker_can_be_scaled():
    worker = COMPOSE["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["environment"]["STREAMLEARN_BROKER"] == "kafka:19092"
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_producer_streams_the_bundled_data_with_the_workers_settings():
    producer = COMPOSE["services"]["producer"]
    script = producer["command"][-1]
    assert "python -m streamlearn.datasets.bikes_csv /tmp/bikes.csv" in script
    assert "streamlearn produce /tmp/bikes.csv --key station --target bikes" in script
    worker_env = COMPOSE["services"]["worker"]["environment"]
    for name in ("STREAMLEARN_BROKER", "STREAMLEARN_PARTITIONS"):
        assert producer["environment"][name] == worker_env[name]
    assert worker_env["STREAMLEARN_MODEL"] == "bikes"


def test_the_producer_command_parses_with_the_real_cli(tmp_path):
    """The producer's `streamlearn produce …` line is a valid command line for this version."""
    import shlex

    from streamlearn.commands.cli import cli

    script = COMPOSE["services"]["producer"]["command"][-1]
    words = shlex.split(script.split("&&", 1)[1])
    assert words[:2] == ["streamlearn", "produce"]
    context = cli.commands["produce"].make_context("produce", words[2:])  # raises on a bad flag
    assert context.params["label_delay"] == "1h" and context.params["time_column"] == "moment"
