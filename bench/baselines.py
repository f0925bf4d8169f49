"""The two in-process reference loops that the end-to-end rate is compared with.

Both walk the workload's events exactly as the learning core joins them: an observation is
predicted at once and its features are kept under `(key, id)`; its label, `label_delay`
observations later, pops them and learns. Only the handling of the per-key model differs:

- `limit_pps`: models live in a dict. No Kafka, no tables, no serialization: the physical
  limit of the Python model part on one core.
- `naive_store_pps`: every event loads its key's model from a RocksDB database (rocksdict)
  with `pickle.loads` and stores it back with `pickle.dumps`, as a straightforward
  table-backed design would. Pending features stay in a dict, as in the limit.
"""

from __future__ import annotations

import pickle
import shutil
import tempfile
import time
from pathlib import Path

from rocksdict import Options, Rdict

from bench.workload import Workload
from streamlearn.learning.models import Factory


def limit_pps(workload: Workload, factory: Factory) -> float:
    """Pairs per second of predict-then-learn on a plain dict of per-key models."""
    models: dict[str, object] = {}
    pending: dict[tuple[str, int], dict] = {}
    started = time.perf_counter()
    for event in workload.events:
        key, value = event.key, event.value
        if event.kind == "observation":
            model = models.get(key)
            if model is None:
                model = models[key] = factory()
            model.predict_one(value["x"])
            pending[key, value["id"]] = value["x"]
        else:
            models[key].learn_one(pending.pop((key, value["id"])), value["y"])
    return workload.pairs / (time.perf_counter() - started)


def naive_store_pps(workload: Workload, factory: Factory, scratch: Path) -> float:
    """Pairs per second when every event round-trips its key's model through pickle and RocksDB."""
    directory = Path(tempfile.mkdtemp(prefix="naive-", dir=scratch))
    db = Rdict(str(directory), Options(raw_mode=True))
    protocol = pickle.HIGHEST_PROTOCOL
    pending: dict[tuple[str, int], dict] = {}
    try:
        started = time.perf_counter()
        for event in workload.events:
            key, value = event.key.encode(), event.value
            raw = db.get(key)
            model = factory() if raw is None else pickle.loads(raw)
            if event.kind == "observation":
                model.predict_one(value["x"])
                pending[key, value["id"]] = value["x"]
            else:
                model.learn_one(pending.pop((key, value["id"])), value["y"])
            db[key] = pickle.dumps(model, protocol=protocol)
        elapsed = time.perf_counter() - started
    finally:
        db.close()
        shutil.rmtree(directory, ignore_errors=True)
    return workload.pairs / elapsed
