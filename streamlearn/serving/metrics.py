"""Prometheus metrics of one worker, read at scrape time from the counters it already keeps.

The processor's `Counters` (also `/counters/`) stay the one record of what happened; the
collector turns them into Prometheus series when scraped, so nothing is counted twice. Only the
two histograms (observation to prediction, checkpoint time) are counted as things happen.
Every label takes values from a small fixed set (outcome, reason, topic, partition, model):
never one series per key.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from streamlearn.serving.describe import metric_value

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LATENCY_BUCKETS_MS = [bound * 1000.0 for bound in LATENCY_BUCKETS]


class LatencyHistogram:
    """Observation-to-prediction latency, counted a batch at a time on the hot path.

    prometheus_client's `Histogram.observe` takes a lock and costs ~2 µs; a bisect into a plain
    list costs a fraction of that per observation, and the collector reads it when scraped.
    """

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last: above every bound
        self.total = 0.0

    def observe_batch(self, record_times_ms: list[float]) -> None:
        """Record how long ago (wall clock) each observation of a batch was written."""
        now_ms = time.time() * 1000.0
        counts, bounds = self.counts, LATENCY_BUCKETS_MS
        for ms in record_times_ms:
            delay = now_ms - ms
            counts[bisect_left(bounds, delay)] += 1
            self.total += delay if delay > 0 else 0.0

    def collect(self) -> Metric:
        cumulative, buckets = 0, []
        for bound, count in zip((*LATENCY_BUCKETS, math.inf), self.counts, strict=True):
            cumulative += count
            buckets.append((floatToGoString(bound), cumulative))
        return HistogramMetricFamily(
            "streamlearn_prediction_latency_seconds",
            "From an observation's record time to its prediction being made.",
            buckets=buckets,
            sum_value=self.total / 1000.0,
        )


class WorkerMetrics:
    """The registry `/metrics` serves, and the histograms the intake observes."""

    def __init__(self, app: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.latency = LatencyHistogram()
        self.checkpoint = Histogram(
            "streamlearn_checkpoint_seconds",
            "Time of one checkpoint: states to the changelog, offsets committed, RocksDB written.",
            registry=self.registry,
        )
        self.registry.register(_Collector(app))


class _Collector(Collector):
    """Reads the app's counters, partitions, lag and live states when Prometheus scrapes."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        app = self.app
        counters = app.processor.counters
        records = CounterMetricFamily(
            "streamlearn_records", "Input records by outcome.", labels=["outcome"]
        )
        for outcome, count in counters.outcomes.items():
            records.add_metric([outcome], count)
        yield records
        yield CounterMetricFamily(
            "streamlearn_predictions",
            "Observations answered.",
            value=counters.outcomes["predicted"],
        )
        yield CounterMetricFamily(
            "streamlearn_learns", "Labels learned (learn calls).", value=counters.learned
        )
        yield CounterMetricFamily(
            "streamlearn_expired",
            "Pending observations and early labels dropped past the horizon or the cap.",
            value=counters.expired,
        )
        letters = CounterMetricFamily(
            "streamlearn_dead_letters", "Records written to the dead letters.", labels=["reason"]
        )
        for reason, count in sorted(counters.dead_letters.items()):
            letters.add_metric([reason], count)
        yield letters
        yield CounterMetricFamily(
            "streamlearn_rebalances",
            "Rebalances this worker came through.",
            value=app.rebalances.completed_count,
        )
        yield GaugeMetricFamily(
            "streamlearn_partitions_owned",
            "Partitions of the inputs this worker owns.",
            value=len(app.rebalances.owned),
        )
        lag = GaugeMetricFamily(
            "streamlearn_consumer_lag",
            "Records in an owned input partition not yet fetched.",
            labels=["topic", "partition"],
        )
        for topic, partition, behind in consumer_lag(app):
            lag.add_metric([topic, str(partition)], behind)
        yield lag
        partitions = list(app.intake.states.partitions.values())
        states = [s for p in partitions for s in p.live.values()]
        yield GaugeMetricFamily(
            "streamlearn_keys_in_memory", "Key states held in memory.", value=len(states)
        )
        yield GaugeMetricFamily(
            "streamlearn_state_bytes",
            "Pickled size of the key states held in memory, as of their last load or checkpoint.",
            value=sum(p.held for p in partitions),
        )
        yield from _candidate_metrics(app.processor.learner, states)
        yield app.metrics.latency.collect()


def consumer_lag(app: Any) -> list[tuple[str, int, int]]:
    """`(topic, partition, records behind)` for each owned input partition whose end is known."""
    intake = app.intake
    try:
        client = app.consumer._thread._ensure_consumer()
    except Exception:  # not started yet, or stopping
        return []
    found = []
    for tp in sorted(client.assignment()):
        if not intake.owns(tp):
            continue
        try:
            highwater = client.highwater(tp)
        except AssertionError:  # aiokafka: no longer assigned
            continue
        fetched = intake.next_offset.get(tp)
        if highwater is not None:
            found.append((tp.topic, tp.partition, max(0, highwater - (fetched or 0))))
    return found


def _candidate_metrics(learner: Any, states: list) -> Iterator[Metric]:
    """Each candidate's metric averaged over the keys in memory that have scored one."""
    metric = learner.new_metric()
    if metric is None:  # an anomaly detector: no metric to report
        return
    name = type(metric).__name__
    mean = GaugeMetricFamily(
        "streamlearn_candidate_metric",
        f"Each candidate's per-key {name}, averaged over the keys in memory.",
        labels=["model", "metric"],
    )
    for model, values in candidate_values(learner, states).items():
        if values:
            mean.add_metric([model, name], sum(values) / len(values))
    yield mean


def candidate_values(learner: Any, states: list) -> dict[str, list[float]]:
    """Per candidate name, its metric on every key in `states` that has one."""
    several = len(learner.names) > 1
    values: dict[str, list[float]] = {name: [] for name in learner.names}
    for state in states:
        for index, name in enumerate(learner.names):
            metric = state.scores[index] if several and state.scores else state.metric
            value = metric_value(metric)
            if value is not None:
                values[name].append(value)
    return values
