"""Anomaly detectors per key, without a broker: scores as River's own detector gives them (also
through a pickled state), the threshold as River's filters classify, labels refused, and the
flags and model mixes that make no sense refused in one line."""

from __future__ import annotations

import orjson
import pytest
from river import anomaly, preprocessing

from streamlearn.commands.replay import replay_events
from streamlearn.datasets.bikes import Fault, bike_stream
from streamlearn.errors import ModelError
from streamlearn.learning.anomaly import Threshold
from streamlearn.learning.core import Learner
from streamlearn.learning.drift import DriftWatch
from streamlearn.learning.events import Observation
from streamlearn.learning.models import load_candidates, load_factory
from streamlearn.learning.processor import Processor, Record
from streamlearn.learning.state import PartitionStates, dumps_state, loads_state
from streamlearn.settings import Topics
from streamlearn.source import Columns, Event, to_events
from tests.oracle import per_key_scores, station_rows

SPEC = "half-space-trees"


def bare_detector() -> anomaly.HalfSpaceTrees:
    """A `module:factory` detector without `predict_one`, as a user might give it."""
    return anomaly.HalfSpaceTrees(window_size=30, seed=3)


def scaled_detector():
    return preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(window_size=30, seed=3)


def numeric_rows() -> list[tuple[str, dict]]:
    """`station_rows` without the text feature: a bare detector takes numbers only."""
    return [(key, {"level": x["level"], "i": x["i"]}) for key, x in station_rows()]


def records(learner: Learner, rows, pickle_every: int = 0) -> dict[str, list[dict]]:
    """Each key's prediction records; with `pickle_every`, each key's state goes through
    pickle after every that many observations, as a checkpoint and a restart do."""
    states: dict = {}
    out: dict[str, list[dict]] = {}
    for i, (key, x) in enumerate(rows):
        state = states.setdefault(key, learner.new_state())
        step = learner.observe(state, key, Observation(i, x, ts=float(i)))
        assert step.outcome == "predicted" and step.learned == 1
        out.setdefault(key, []).append(orjson.loads(step.prediction.to_json()))
        if pickle_every and len(out[key]) % pickle_every == 0:
            states[key] = loads_state(dumps_state(state))
    return out


@pytest.mark.parametrize("pickle_every", [0, 7])
@pytest.mark.parametrize(
    ("spec", "numeric"),
    [(SPEC, True), ("tests.unit.test_anomaly:bare_detector", True)],
)
def test_scores_per_key_are_rivers_own_detector_over_the_key(spec, numeric, pickle_every):
    rows = station_rows() if spec == SPEC else numeric_rows()
    ours = records(Learner(load_candidates([spec])), rows, pickle_every)
    expected = per_key_scores(rows, load_factory(spec))
    assert set(ours) == set(expected)
    for key, got in ours.items():
        assert [r["score"] for r in got] == expected[key]  # exactly, not approximately
        assert [r["y_pred"] for r in got] == expected[key]
        assert [r["n_learned"] for r in got] == list(range(len(got)))
        assert all("is_anomaly" not in r for r in got)  # no threshold, no flag
        assert any(score > 0 for score in expected[key])  # past the first window


@pytest.mark.parametrize(
    ("threshold", "river_filter"),
    [
        (Threshold(quantile=0.9), lambda d: anomaly.QuantileFilter(d, 0.9, False)),
        (Threshold(value=0.6), lambda d: anomaly.ThresholdFilter(d, 0.6, False)),
    ],
)
def test_is_anomaly_is_rivers_filter_classification(threshold, river_filter):
    rows = numeric_rows()
    ours = records(
        Learner(load_candidates(["tests.unit.test_anomaly:scaled_detector"]), threshold=threshold),
        rows,
        pickle_every=5,
    )
    filters: dict = {}
    for key, x in rows:
        flt = filters.setdefault(key, river_filter(scaled_detector()))
        expected = flt.classify(flt.score_one(x))
        flt.learn_one(x)
        if isinstance(flt, anomaly.ThresholdFilter):
            # River 0.26's AnomalyFilter.learn_one never teaches the detector when
            # protect_anomaly_detector is False (QuantileFilter overrides it and does).
            flt.anomaly_detector.learn_one(x)
        got = ours[key].pop(0)
        assert got["is_anomaly"] is expected, (key, got)
    assert not any(ours.values())


def test_grace_neither_flags_nor_counts_a_keys_first_scores():
    rows, grace = numeric_rows(), 60
    learner = Learner(
        load_candidates(["tests.unit.test_anomaly:scaled_detector"]),
        threshold=Threshold(quantile=0.9, grace=grace),
    )
    ours = records(learner, rows)
    filters: dict = {}
    for key, x in rows:
        flt = filters.setdefault(key, anomaly.QuantileFilter(scaled_detector(), 0.9, False))
        got = ours[key].pop(0)
        if got["n_learned"] < grace:
            assert got["is_anomaly"] is False
            flt.anomaly_detector.learn_one(x)  # learned, but not in the quantile
        else:
            assert got["is_anomaly"] is flt.classify(flt.score_one(x)), got
            flt.learn_one(x)


FAULTS = (Fault("station-03", 100, 24), Fault("station-11", 200, 12), Fault("station-16", 260, 48))


def test_a_broken_station_in_the_bikes_stream_is_flagged_and_others_rarely():
    rows = list(bike_stream(days=14, faults=FAULTS))
    predictions: list[bytes] = []
    learner = Learner(load_candidates(["bikes-anomaly"]), threshold=Threshold(quantile=0.98))
    events = to_events(rows, Columns("station", None, time="moment"))
    replay_events(events, learner, on_prediction=predictions.append)
    hours = [i // 20 for i in range(len(rows))]  # 20 stations, one row each per hour
    flagged = [orjson.loads(p)["is_anomaly"] for p in predictions]
    first_flags = []
    for fault in FAULTS:
        within = [h for row, h, f in zip(rows, hours, flagged, strict=True)
                  if f and fault.covers(row["station"], h)]  # fmt: skip
        first_flags.append(within[0] - fault.start if within else None)
    false_alarms = sum(
        f and not any(fault.covers(row["station"], h) for fault in FAULTS)
        for row, h, f in zip(rows, hours, flagged, strict=True)
    )
    assert first_flags[0] is not None and first_flags[0] <= 2, first_flags  # measured: 0
    assert sum(d is not None for d in first_flags) >= 2, first_flags  # measured: [0, 6, 15]
    assert false_alarms < 0.08 * len(rows), false_alarms  # measured: 370 of 6720 (5.5 %)


def processor() -> Processor:
    return Processor(Learner(load_candidates([SPEC])), Topics(), 1, max_event_bytes=1024)


def test_labels_are_dead_lettered_and_a_repeated_observation_is_a_duplicate():
    proc, store = processor(), PartitionStates(lambda key: None, size=10)
    obs = orjson.dumps({"id": 1, "x": {"level": 2.0}})
    out = proc.process(Record("observations", 0, 0, 0.0, b"k", obs), store)
    assert [o.topic for o in out] == ["predictions"]
    out = proc.process(Record("observations", 0, 1, 0.0, b"k", obs), store)
    assert out == [] and proc.counters.outcomes["duplicate"] == 1
    label = orjson.dumps({"id": 1, "y": 3.0})
    out = proc.process(Record("labels", 0, 0, 0.0, b"k", label), store)
    letter = orjson.loads(out[0].value)
    assert out[0].topic == "dead-letters" and letter["error"].startswith("unexpected-label: ")
    assert proc.counters.as_dict()["learned"] == 1


@pytest.mark.parametrize(
    ("specs", "options", "says"),
    [
        ([SPEC, "linear-regression"], {}, "or one anomaly detector, not a mix"),
        ([SPEC, SPEC], {}, "one anomaly detector per app"),
        (["linear-regression"], {"threshold": Threshold(0.9)}, "need an anomaly detector"),
        ([SPEC], {"drift": DriftWatch("adwin")}, "supervised models, not of a detector"),
        ([SPEC], {"threshold": Threshold(grace=5)}, "--anomaly-grace needs"),
        (["linear-regression"], {"drift": DriftWatch("none", "reset")}, "needs a detector"),
    ],
)
def test_mixes_and_flags_that_make_no_sense_are_refused(specs, options, says):
    with pytest.raises(ModelError, match=says):
        Learner(load_candidates(specs), **options)


def test_replay_scores_observations_only():
    rows = station_rows(keys=2, n=80)
    events = [Event("observation", key, {"id": i, "x": x}) for i, (key, x) in enumerate(rows)]
    result = replay_events(events, Learner(load_candidates([SPEC]), threshold=Threshold(0.9)))
    assert result.counters["predicted"] == result.counters["learned"] == len(rows)
    assert result.counters["dead_lettered"] == 0
    assert {key: state.n_learned for key, state in result.states.items()} == {
        "sensor-0": 80,
        "sensor-1": 80,
    }
