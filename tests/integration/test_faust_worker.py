"""`faust -A streamlearn.worker.app worker`, Faust's own command, configured by `STREAMLEARN_*`
variables."""

from __future__ import annotations

import sys

from streamlearn.testing import READY_LINE, TopicReader, produce, until


async def test_faust_worker_logs_the_ready_line_and_the_counters(kafka_bootstrap, topics, workers):
    worker = workers.make()
    worker.args = [
        sys.executable,
        "-m",
        "faust",
        "-A",
        "streamlearn.worker.app",
        "worker",
    ]  # default level
    worker.env.update(
        STREAMLEARN_BROKER=kafka_bootstrap,
        STREAMLEARN_APP_ID=workers.app_id,
        STREAMLEARN_DATA_DIR=str(worker.data_dir),
        STREAMLEARN_WEB_PORT=str(worker.web_port),
        STREAMLEARN_PARTITIONS=str(workers.partitions),
        STREAMLEARN_OBSERVATIONS_TOPIC=topics.observations,
        STREAMLEARN_LABELS_TOPIC=topics.labels,
        STREAMLEARN_PREDICTIONS_TOPIC=topics.predictions,
        STREAMLEARN_DEAD_LETTERS_TOPIC=topics.dead_letters,
    )
    worker.start(timeout=60)  # returns once the ready line is in the log
    assert worker.log().count(READY_LINE) == 1
    async with TopicReader(kafka_bootstrap, topics.predictions) as reader:
        await produce(kafka_bootstrap, [(topics.observations, "k", {"id": 1, "x": {"a": 1.0}})])
        await reader.read(1)
    await until(lambda: "counters {'consumed': 1, 'predicted': 1," in worker.log(), 30)
