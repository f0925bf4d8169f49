"""A synthetic stream in the M5 layout: daily unit sales of products in stores.

The second founding article forecasts M5 sales per product and store; its rows are long data,
`id,date,y`, with ids like `HOBBIES_1_001_CA_1` (item `HOBBIES_1_001` in store `CA_1`). This
generator makes rows of that shape with a weekly rhythm per item, so tests and examples can run
the `m5` preset without the Kaggle files.

    >>> rows = sales_rows(keys=2, days=3)
    >>> rows[0], len(rows)
    ({'id': 'HOBBIES_1_001_CA_1', 'date': '2016-01-01', 'y': 3}, 6)
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

CATEGORIES = ("HOBBIES_1", "HOUSEHOLD_1", "FOODS_3")
STORES = ("CA_1", "TX_2", "WI_3")
FIRST_DAY = date(2016, 1, 1)


def sales_ids(keys: int) -> list[str]:
    """`keys` M5 ids: items of three departments, each sold in every one of three stores."""
    ids = []
    for n in range(keys):
        item, store = divmod(n, len(STORES))
        department = CATEGORIES[item % len(CATEGORIES)]
        ids.append(f"{department}_{item // len(CATEGORIES) + 1:03d}_{STORES[store]}")
    return ids


def sales_rows(keys: int, days: int, seed: int = 7) -> list[dict]:
    """`{"id", "date", "y"}` rows sorted by date, then id: each item sells more at weekends."""
    rng = random.Random(seed)
    base = {key: rng.uniform(1.0, 8.0) for key in sales_ids(keys)}
    rows = []
    for day in range(days):
        moment = FIRST_DAY + timedelta(days=day)
        weekend = 1.6 if moment.weekday() >= 5 else 1.0
        for key, level in base.items():
            mean = level * weekend
            y = max(0, round(rng.gauss(mean, math.sqrt(mean))))
            rows.append({"id": key, "date": moment.isoformat(), "y": y})
    return rows
