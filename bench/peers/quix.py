"""Peer: Quix Streams, with each key's River model in its State API (RocksDB, changelog on).

The observations and labels topics are two dataframes concatenated into one, so that a single
stateful function sees both and their state is one store, partitioned as the topics are (Quix
then processes the two topics in timestamp order). Per key the state holds the model, pickled
(`set_bytes`; the default JSON serializer cannot hold it), and the features of observations
waiting for their label under `p<id>` (JSON). An observation loads the model, predicts and keeps
its features; the label with its id loads them and the model, learns and stores the model back.
A label that comes first waits under `y<id>` for its observation. Predictions go to the output
topic with `to_topic`. Everything else is Quix's default: at-least-once, a checkpoint every
5 s (changelog records flushed, offsets committed, RocksDB written).

Timed from the first record the function sees to the end of `Application.run`, which the
function stops once every pair is predicted and learned; `run` returns after the final
checkpoint, which flushes the last predictions to the broker, and after closing the consumer
and the stores (a few tens of ms).

Needs the optional `bench` extra (`pip install -e '.[bench]'`). Run by `bench.peers.drain`:
`python -m bench.peers.quix --help`.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass

from quixstreams import Application, State
from quixstreams.kafka.configuration import ConnectionConfig

from bench.cluster import security
from bench.peers import STALL_SECONDS, Spec, Timing, main
from streamlearn.learning.models import load_factory
from streamlearn.testing import unique

PROTOCOL = pickle.HIGHEST_PROTOCOL


@dataclass
class Progress:
    predicted: int = 0
    learned: int = 0
    started: float | None = None  # perf_counter at the first record
    first_at: float = 0.0  # the same moment on the wall clock


def connection(bootstrap: str) -> ConnectionConfig:
    """The bench's security settings (bench/cluster.py) as librdkafka takes them."""
    settings = security()
    return ConnectionConfig(
        bootstrap_servers=bootstrap,
        security_protocol=settings.protocol,
        sasl_mechanism=settings.sasl_mechanism if settings.uses_sasl else None,
        sasl_username=settings.username,
        sasl_password=settings.password,
        ssl_ca_location=str(settings.ca_file) if settings.ca_file else None,
        ssl_certificate_location=str(settings.cert_file) if settings.cert_file else None,
        ssl_key_location=str(settings.key_file) if settings.key_file else None,
    )


def run(spec: Spec) -> Timing:
    """Predict and learn every pair of the backlog; the timing of the drain."""
    factory = load_factory(spec.model)
    app = Application(
        broker_address=connection(spec.bootstrap),
        consumer_group=unique("quix"),
        auto_offset_reset="earliest",
        state_dir=spec.state_dir,
        use_changelog_topics=True,
        loglevel="WARNING",
    )
    observations = app.topic(spec.observations, key_deserializer="bytes")
    labels = app.topic(spec.labels, key_deserializer="bytes")
    predictions = app.topic(spec.predictions, key_serializer="bytes", value_serializer="json")
    progress = Progress()

    def step(value: dict, state: State) -> dict | None:
        """Predict on an observation (the prediction goes on), learn on a label (None)."""
        if progress.started is None:
            progress.started, progress.first_at = time.perf_counter(), time.time()
        event_id = value["id"]
        if "x" in value:
            raw = state.get_bytes("model")
            model = factory() if raw is None else pickle.loads(raw)
            x = value["x"]
            prediction = {"id": event_id, "y_pred": model.predict_one(x)}
            progress.predicted += 1
            y = state.get(f"y{event_id}")
            if y is None:
                state.set(f"p{event_id}", x)
            else:
                state.delete(f"y{event_id}")
                _learn(state, model, x, y, progress)
            if raw is None and y is None:
                state.set_bytes("model", pickle.dumps(model, protocol=PROTOCOL))
            _stop_when_done(app, spec.pairs, progress)
            return prediction
        x = state.get(f"p{event_id}")
        if x is None:
            state.set(f"y{event_id}", value["y"])
        else:
            state.delete(f"p{event_id}")
            _learn(state, pickle.loads(state.get_bytes("model")), x, value["y"], progress)
            _stop_when_done(app, spec.pairs, progress)
        return None

    events = app.dataframe(observations).concat(app.dataframe(labels))
    events = events.apply(step, stateful=True).filter(lambda prediction: prediction is not None)
    events.to_topic(predictions)
    app.run(timeout=STALL_SECONDS)  # stops early when `step` has seen every pair
    seconds = time.perf_counter() - (progress.started or time.perf_counter())
    return Timing(seconds, progress.first_at, progress.predicted, progress.learned)


def _learn(state: State, model: object, x: dict, y: object, progress: Progress) -> None:
    model.learn_one(x, y)
    state.set_bytes("model", pickle.dumps(model, protocol=PROTOCOL))
    progress.learned += 1


def _stop_when_done(app: Application, pairs: int, progress: Progress) -> None:
    if progress.predicted >= pairs and progress.learned >= pairs:
        app.stop()


if __name__ == "__main__":
    main(run)
