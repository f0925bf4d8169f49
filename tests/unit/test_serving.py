"""The serving parts without a broker: a key's description, predict leaving the model as it
was, the bind-address rule, and the latency histogram."""

from __future__ import annotations

import pickle
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from river import compose

from streamlearn.commands.web import check_web_exposure
from streamlearn.errors import ConfigError
from streamlearn.learning.core import Label, Learner, Observation
from streamlearn.learning.models import load_candidates
from streamlearn.serving.describe import describe_key, predict_without_learning
from streamlearn.serving.metrics import LatencyHistogram


def trained(models: list[str], rows: int = 30) -> tuple[Learner, object]:
    learner = Learner(load_candidates(models))
    state = learner.new_state()
    for i in range(rows):
        x = {"a": float(i % 5), "b": float(i % 3)}
        learner.observe(state, "k", Observation(i, x, ts=float(i)))
        y = (i % 5 > 2) if learner.classifier else 2.0 * (i % 5) + 1
        learner.label(state, "k", Label(i, y, ts=float(i)))
    return learner, state


@pytest.mark.parametrize("models", [["linear-regression"], ["logistic-regression"]])
def test_predict_leaves_the_state_as_it_was_even_when_pipelines_learn_while_predicting(models):
    learner, state = trained(models)
    before = pickle.dumps(state)
    with compose.learn_during_predict():  # River's switch that makes a pipeline's scaler learn
        answer = predict_without_learning(state, {"a": 100.0, "b": -50.0}, learner.classifier)
    assert pickle.dumps(state) == before
    assert answer["n_learned"] == 30
    assert ("proba" in answer) == learner.classifier


def test_a_key_with_two_candidates_describes_each_with_its_own_metric():
    learner, state = trained(["linear-regression", "knn-regression"])
    described = describe_key(state, learner.names)
    names = [c["name"] for c in described["candidates"]]
    assert names == ["linear-regression", "knn-regression"]
    assert [c["serving"] for c in described["candidates"]].count(True) == 1
    assert described["serving"] == names[state.leader]
    values = [c["metric"] for c in described["candidates"]]
    assert values == [score.get() for score in state.scores]
    linear = described["candidates"][0]["model"]
    assert set(linear["weights"]) == {"a", "b"} and "intercept" in linear
    assert described["clock"] == 28.0 and described["pending"] == described["early"] == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_needs_no_token(host):
    check_web_exposure(host, None)


def test_every_interface_needs_a_token():
    with pytest.raises(ConfigError, match="STREAMLEARN_WEB_TOKEN"):
        check_web_exposure("0.0.0.0", None)
    check_web_exposure("0.0.0.0", "s3cret")


def test_the_latency_histogram_counts_each_observation_in_its_bucket():
    histogram = LatencyHistogram()
    now_ms = time.time() * 1000.0
    histogram.observe_batch([now_ms - 3, now_ms - 700, now_ms - 60_000, now_ms + 5])  # +5: skew
    registry = CollectorRegistry()
    registry.register(type("One", (), {"collect": lambda self: [histogram.collect()]})())
    samples = {
        (s.name, s.labels.get("le")): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    name = "streamlearn_prediction_latency_seconds"
    assert samples[(f"{name}_bucket", "0.001")] == 1  # the skewed one, counted as no delay
    assert samples[(f"{name}_bucket", "0.005")] == 2
    assert samples[(f"{name}_bucket", "1.0")] == 3
    assert samples[(f"{name}_bucket", "30.0")] == 3
    assert samples[(f"{name}_bucket", "+Inf")] == samples[(f"{name}_count", None)] == 4
    assert samples[(f"{name}_sum", None)] == pytest.approx(60.703, abs=0.05)


def test_an_anomaly_key_is_described_without_a_metric_and_a_drifted_key_with_its_drift():
    detector = Learner(load_candidates(["half-space-trees"]))
    state = detector.new_state()
    for i in range(5):
        detector.observe(state, "k", Observation(i, {"a": float(i)}, ts=float(i)))
    summary = describe_key(state, detector.names)
    assert summary["metric"] is None and summary["candidates"][0]["metric"] is None
    assert summary["n_learned"] == 5 and summary["drift"] is None
    learner, drifted = trained(["linear-regression"])
    drifted.drift = {"count": 1, "ts": 12.0, "n_learned": 12}
    assert describe_key(drifted, learner.names)["drift"] == drifted.drift
