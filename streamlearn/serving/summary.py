"""One worker's share of the app as the dashboard shows it: counters, lag, metrics, keys.

The dashboard adds up the summaries of every worker (`/dashboard/app.json`); nothing here is
per-app, so N workers on several hosts are N summaries.
"""

from __future__ import annotations

import time
from typing import Any

from streamlearn.serving.describe import metric_value
from streamlearn.serving.metrics import candidate_values, consumer_lag

EXTREMES = 5  # keys shown at each end of the metric ranking


def worker_summary(app: Any) -> dict[str, Any]:
    """This worker's counters, partitions, lag, candidates' metric over its keys in memory, and
    its best and worst keys."""
    learner = app.processor.learner
    counters = app.processor.counters
    live = [
        (key, state)
        for states in app.intake.states.partitions.values()
        for key, state in states.live.items()
    ]
    scored = []
    for key, state in live:
        value = metric_value(state.metric)
        if value is not None:
            scored.append({"key": key.decode(errors="replace"), "metric": value,
                           "n_learned": state.n_learned})  # fmt: skip
    metric = learner.new_metric()  # None for an anomaly detector: keys are not ranked
    best_first = getattr(metric, "bigger_is_better", False)
    scored.sort(key=lambda entry: entry["metric"], reverse=best_first)
    candidates = {  # sums, so the dashboard weighs each worker by its keys
        name: {"sum": sum(values), "keys": len(values)}
        for name, values in candidate_values(learner, [state for _, state in live]).items()
    }
    return {
        "worker": str(app.conf.canonical_url),
        "time": time.time(),
        "counters": counters.as_dict(),
        "dead_letters": dict(counters.dead_letters),
        "partitions": sorted(app.rebalances.owned),
        "moving": app.rebalances.started is not None,  # a rebalance is under way
        "lag": sum(behind for _, _, behind in consumer_lag(app)),
        "keys_in_memory": len(live),
        "metric": None if metric is None else type(metric).__name__,
        "candidates": candidates,
        "best": scored[:EXTREMES],
        "worst": scored[::-1][:EXTREMES],
    }
