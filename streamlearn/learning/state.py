"""How a key's state is kept: live in memory between events, one pickled `KeyState` when written.

One value per key makes each update atomic: the model, the pending join and the source offsets
change together in one table write (one changelog record), which is what makes redelivery
after a crash detectable. Pickle is the fastest faithful codec for River models (README,
"Choices": dill is ~19x slower).
"""

from __future__ import annotations

import pickle
from collections import OrderedDict, deque
from collections.abc import Callable
from itertools import islice
from typing import NamedTuple, Protocol

from streamlearn.learning.core import KeyState


def dumps_state(state: KeyState) -> bytes:
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def loads_state(raw: bytes) -> KeyState:
    return pickle.loads(raw)


class StateStore(Protocol):
    """Where the processor reads and writes per-key state."""

    def get(self, key: bytes) -> KeyState | None: ...

    def put(self, key: bytes, state: KeyState) -> None: ...


class Written(NamedTuple):
    """A state as a checkpoint writes it: pickled, with the input offsets it covers."""

    value: bytes
    observations: int  # the offset of the last observation applied (-1: none)
    labels: int  # the same for labels


def written(state: KeyState) -> Written:
    return Written(dumps_state(state), state.offsets.get("o", -1), state.offsets.get("l", -1))


class PartitionStates:
    """The live states of one partition's keys: in memory between events.

    A key's state is unpickled from `load` (the local RocksDB, in a worker) once, then stays in
    memory; events change it there, and only a checkpoint pickles what changed and writes it.
    That keeps the cost of a record near the cost of its model, where pickling the whole state
    on every event cost 20-50x.

    A checkpoint starts with a cut (`take_cut`): the keys changed so far are to be written as they
    are at that moment, while events go on. They are pickled in the background (`pickle_cut`),
    or, for a key an event is about to change first, by `get` just before it hands the state
    over. So the intake never waits for a whole checkpoint's pickling. Only clean states are
    evicted, least recent first, once a cut is written (`cut_written`).

        >>> states = PartitionStates(load=lambda key: None, size=1)
        >>> states.get(b"a") is None
        True
    """

    def __init__(self, load: Callable[[bytes], bytes | None], size: int) -> None:
        self.load = load  # the key's pickled state, or None
        self.size = size
        self.live: OrderedDict[bytes, KeyState] = OrderedDict()
        self.dirty: set[bytes] = set()  # changed since the last cut
        self.cut: dict[bytes, Written | None] = {}  # as of the cut; None: not pickled yet
        self.unpickled: deque[bytes] = deque()  # keys of `cut` still to pickle, maybe done
        self.sizes: dict[bytes, int] = {}  # pickled size of each live state, as last read or cut

    def get(self, key: bytes) -> KeyState | None:
        state = self.live.get(key)
        if state is None:
            raw = self.load(key)
            if raw is None:
                return None
            state = self.live[key] = loads_state(raw)
            self.sizes[key] = len(raw)
        elif key in self.cut and self.cut[key] is None:
            self._freeze(key, state)  # as of the cut, before the event changes it
        return state

    def put(self, key: bytes, state: KeyState) -> None:
        if key in self.cut and self.cut[key] is None:
            self._freeze(key, self.live[key])
        self.live[key] = state
        self.live.move_to_end(key)
        self.dirty.add(key)

    def take_cut(self) -> None:
        """The cut: what changed so far is to be written as it is now."""
        assert not self.cut, "one checkpoint at a time"
        self.cut = dict.fromkeys(self.dirty)
        self.unpickled = deque(self.dirty)
        self.dirty = set()

    def pickle_cut(self, count: int) -> bool:
        """Pickle up to `count` states of the cut; whether some are still to pickle."""
        while count > 0 and self.unpickled:
            key = self.unpickled.popleft()
            if self.cut[key] is None:
                self._freeze(key, self.live[key])
                count -= 1
        return bool(self.unpickled)

    def cut_written(self) -> None:
        """The cut is durable: forget it, and evict the least recent clean states."""
        self.cut = {}
        excess = len(self.live) - self.size
        if excess > 0:
            clean = (key for key in self.live if key not in self.dirty)
            for key in list(islice(clean, excess)):  # least recent first, and no further
                del self.live[key]
                self.sizes.pop(key, None)

    @property
    def held(self) -> int:
        """What the live states weigh as last read or cut, in pickled bytes (for /metrics)."""
        return sum(self.sizes.values())

    def _freeze(self, key: bytes, state: KeyState) -> None:
        """Pickle `state` into the cut."""
        frozen = self.cut[key] = written(state)
        self.sizes[key] = len(frozen.value)
