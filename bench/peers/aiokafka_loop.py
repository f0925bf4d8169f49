"""Peer: the loop a developer would write by hand with aiokafka, without a framework.

One consumer (its own group, from the earliest offset) reads the observations and labels topics
in `getmany` batches; models live in a dict, one per key from the model factory; an observation
is predicted at once and its features kept under `(key, id)`, and the label with that id learns
from them. A label that arrives first (the two topics are fetched independently) waits for its
observation, which then learns as soon as it has predicted. Each prediction is handed to the
producer (the bench's: murmur2, acks=1, 5 ms linger like the worker) without waiting for its
delivery; the deliveries are checked once, at the end, after a flush.

No state is kept anywhere but in memory and no offsets are tied to it: this is the speed of
the job itself on Kafka, with none of the guarantees. Timed from the first batch that holds a
record to the flush that confirms the last prediction, after the last label was learned.

Run by `bench.peers.drain`: `python -m bench.peers.aiokafka_loop --help`.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from aiokafka import AIOKafkaConsumer

from bench.cluster import producer, security
from bench.peers import STALL_SECONDS, Spec, Timing, main
from streamlearn.learning.models import load_factory
from streamlearn.testing import unique

LINGER_MS = 5  # as the streamlearn worker's producer


def run(spec: Spec) -> Timing:
    return asyncio.run(drain(spec))


async def drain(spec: Spec) -> Timing:
    """Predict and learn every pair of the backlog; the timing of the drain."""
    factory = load_factory(spec.model)
    consumer = AIOKafkaConsumer(
        spec.observations, spec.labels, bootstrap_servers=spec.bootstrap,
        group_id=unique("aiokafka-loop"), auto_offset_reset="earliest",
        **security().client_kwargs(),
    )  # fmt: skip
    sender = producer(spec.bootstrap, linger_ms=LINGER_MS)
    await consumer.start()
    await sender.start()
    models: dict[bytes, object] = {}
    pending: dict[tuple[bytes, int], dict] = {}  # observations' features, waiting for labels
    early: dict[tuple[bytes, int], object] = {}  # labels that came before their observation
    deliveries: list[asyncio.Future] = []
    predicted = learned = 0
    started = first_at = None
    idle_since = time.monotonic()
    try:
        while predicted < spec.pairs or learned < spec.pairs:
            batches = await consumer.getmany(timeout_ms=1000)
            if not batches:
                if time.monotonic() - idle_since > STALL_SECONDS:
                    raise TimeoutError(f"stalled at {predicted} predicted, {learned} learned")
                continue
            idle_since = time.monotonic()
            if started is None:
                started, first_at = time.perf_counter(), time.time()
            for partition, records in batches.items():
                if partition.topic == spec.observations:
                    for record in records:
                        key, value = record.key, orjson.loads(record.value)
                        model = models.get(key)
                        if model is None:
                            model = models[key] = factory()
                        x = value["x"]
                        prediction = {"id": value["id"], "y_pred": model.predict_one(x)}
                        deliveries.append(
                            await sender.send(
                                spec.predictions, key=key, value=orjson.dumps(prediction)
                            )
                        )
                        predicted += 1
                        joined = key, value["id"]
                        if joined in early:
                            model.learn_one(x, early.pop(joined))
                            learned += 1
                        else:
                            pending[joined] = x
                else:
                    for record in records:
                        key, value = record.key, orjson.loads(record.value)
                        x = pending.pop((key, value["id"]), None)
                        if x is None:
                            early[key, value["id"]] = value["y"]
                        else:
                            models[key].learn_one(x, value["y"])
                            learned += 1
        await sender.flush()
        await asyncio.gather(*deliveries)  # raises if any prediction was not delivered
        seconds = time.perf_counter() - started
    finally:
        await sender.stop()
        await consumer.stop()
    return Timing(seconds, first_at, predicted, learned)


if __name__ == "__main__":
    main(run)
