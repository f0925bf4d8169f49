"""The live states of every partition this worker owns, one `PartitionStates` each.

Each partition has its own, so eviction and a partition moving away never touch another
partition's keys; the checkpoint (checkpoint.py) writes what they changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamlearn.learning.state import PartitionStates


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

    def drop(self, partitions: Any = None) -> None:
        """Forget the live states of `partitions` (all when None), written or not: their
        records after the last checkpoint are read again and rebuild them."""
        for partition in list(self.partitions) if partitions is None else partitions:
            self.partitions.pop(partition, None)
