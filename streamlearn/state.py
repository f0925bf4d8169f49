"""How a key's state is stored: one pickled `KeyState` per key, and a read cache in front of it.

One value per key makes each update atomic: the model, the pending join and the source offsets
change together in one table write (one changelog record), which is what makes redelivery
after a crash detectable. Pickle is the fastest faithful codec for River models (README,
"Choices": dill is ~19x slower).
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from collections.abc import MutableMapping
from typing import Protocol

from streamlearn.core import KeyState


def dumps_state(state: KeyState) -> bytes:
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def loads_state(raw: bytes) -> KeyState:
    return pickle.loads(raw)


class StateStore(Protocol):
    """Where the processor reads and writes per-key state."""

    def get(self, key: bytes) -> KeyState | None: ...

    def put(self, key: bytes, state: KeyState) -> None: ...


class MemoryStore(dict):
    """Live states in a plain dict: for replay, where nothing outlives the process."""

    def put(self, key: bytes, state: KeyState) -> None:
        self[key] = state


class CachedStore:
    """Pickled states in a table (any mutable mapping of bytes), unpickled ones in an LRU cache.

    Every `put` writes through to the table, so the cache never holds anything the table lacks;
    it only saves unpickling. Call `clear` whenever the table's content may change beneath it
    (partitions revoked or assigned, recovery from the changelog).

        >>> store = CachedStore({}, size=2)
        >>> store.get(b"k") is None
        True
    """

    def __init__(self, table: MutableMapping, size: int = 10_000) -> None:
        self.table = table
        self.size = size
        self._cache: OrderedDict[bytes, KeyState] = OrderedDict()

    def get(self, key: bytes) -> KeyState | None:
        state = self._cache.get(key)
        if state is not None:
            self._cache.move_to_end(key)
            return state
        raw = self.table.get(key)
        if raw is None:
            return None
        state = loads_state(raw)
        self._remember(key, state)
        return state

    def put(self, key: bytes, state: KeyState) -> None:
        self.table[key] = dumps_state(state)
        self._remember(key, state)

    def clear(self) -> None:
        self._cache.clear()

    def _remember(self, key: bytes, state: KeyState) -> None:
        if self.size <= 0:
            return
        self._cache[key] = state
        self._cache.move_to_end(key)
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
