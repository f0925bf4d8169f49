"""The outbox's batches: a record goes to its partition's open batch, a full batch is set
aside whole, and every record lands in exactly one batch."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from streamlearn.worker.outbox import Outbox


async def test_records_fill_batches_per_partition_in_order():
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", max_batch_size=1024)
    outbox = Outbox(producer)  # batches are built without a broker; only sending needs one
    for n in range(60):
        outbox.add("t", n % 2, b"k%d" % n, b"v" * 100, 1_000 + n)
    full = [(topic, partition, batch.record_count()) for topic, partition, batch in outbox.full]
    assert full and all(size > 1 for _, _, size in full)  # several records per batch
    per_partition = {p: sum(s for _, q, s in full if q == p) for p in (0, 1)}
    for (_, partition), batch in outbox.open.items():
        per_partition[partition] += batch.record_count()
    assert per_partition == {0: 30, 1: 30}
    outbox.forget()
    assert not outbox.open and not outbox.full
    await producer.stop()
