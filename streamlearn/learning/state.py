"""How a key's state is kept: live in memory between events, one pickled `KeyState` when written.

One value per key makes each update atomic: the model, the pending join and the source offsets
change together in one table write (one changelog record), which is what makes redelivery
after a crash detectable. Pickle is the fastest faithful codec for River models (README,
"Choices": dill is ~19x slower).
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Protocol

from streamlearn.learning.core import KeyState


def dumps_state(state: KeyState) -> bytes:
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def loads_state(raw: bytes) -> KeyState:
    return pickle.loads(raw)


class StateStore(Protocol):
    """Where the processor reads and writes per-key state."""

    def get(self, key: bytes) -> KeyState | None: ...

    def put(self, key: bytes, state: KeyState) -> None: ...


class PartitionStates:
    """The live states of one partition's keys: in memory between events.

    A key's state is unpickled from `load` (the local RocksDB, in a worker) once, then stays in
    memory; events change it there, and only a checkpoint pickles what changed (`changed`) and
    writes it. That keeps the cost of a record near the cost of its model, where pickling the
    whole state on every event cost 20-50x. Only clean states are evicted, least recent first,
    when a checkpoint is done: a changed one waits for it.

        >>> states = PartitionStates(load=lambda key: None, size=1)
        >>> states.get(b"a") is None
        True
    """

    def __init__(self, load: Callable[[bytes], bytes | None], size: int) -> None:
        self.load = load  # the key's pickled state, or None
        self.size = size
        self.live: OrderedDict[bytes, KeyState] = OrderedDict()
        self.dirty: set[bytes] = set()

    def get(self, key: bytes) -> KeyState | None:
        state = self.live.get(key)
        if state is None:
            raw = self.load(key)
            if raw is None:
                return None
            state = self.live[key] = loads_state(raw)
        return state

    def put(self, key: bytes, state: KeyState) -> None:
        self.live[key] = state
        self.live.move_to_end(key)
        self.dirty.add(key)

    def changed(self) -> Iterator[tuple[bytes, KeyState]]:
        """The states changed since the last checkpoint."""
        for key in self.dirty:
            yield key, self.live[key]

    def checkpointed(self) -> None:
        """Everything changed is written: forget it, and evict the least recent clean states."""
        self.dirty.clear()
        while len(self.live) > self.size:
            self.live.popitem(last=False)
