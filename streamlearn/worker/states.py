"""The live states of every partition this worker owns, one `PartitionStates` each.

Each partition has its own, so eviction and a partition moving away never touch another
partition's keys; the checkpoint (checkpoint.py) writes what they changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamlearn.learning.core import KeyState
from streamlearn.learning.state import PartitionStates, loads_state


class States:
    """`PartitionStates` for each partition this worker owns, made on first use."""

    def __init__(self, load: Callable[[int, bytes], bytes | None], size: int) -> None:
        self.load = load  # (partition, key) -> pickled state in the local RocksDB
        self.size = size  # live states kept per partition beyond those not yet written
        self.partitions: dict[int, PartitionStates] = {}

    def __getitem__(self, partition: int) -> PartitionStates:
        states = self.partitions.get(partition)
        if states is None:
            states = self.partitions[partition] = PartitionStates(
                lambda key: self.load(partition, key), self.size
            )
        return states

    def peek(self, partition: int, key: bytes) -> KeyState | None:
        """The key's current state, live or stored, without keeping it in memory: a reader (the
        web's `/keys/`) must not change what the intake holds or evicts."""
        states = self.partitions.get(partition)
        state = states.live.get(key) if states is not None else None
        if state is not None:
            return state
        raw = self.load(partition, key)
        return None if raw is None else loads_state(raw)

    def drop(self, partitions: Any = None) -> None:
        """Forget the live states of `partitions` (all when None), written or not: their
        records after the last checkpoint are read again and rebuild them."""
        for partition in list(self.partitions) if partitions is None else partitions:
            self.partitions.pop(partition, None)
