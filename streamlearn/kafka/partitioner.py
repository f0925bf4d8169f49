"""Which partition a key belongs to: murmur2, exactly as the Java client and aiokafka hash keys.

Observations, labels and the state table's changelog all have the same partition count and are
placed by this hash, so every event of a key meets its state on one partition of one worker.

    >>> partition_for(b"station-7", 8) == partition_for(b"station-7", 8)
    True
"""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2


@lru_cache(maxsize=1 << 16)  # murmur2 is pure Python (~3 µs); the hot path asks per record
def partition_for(key: bytes, partitions: int) -> int:
    """The partition the Java client, aiokafka and Faust choose for `key`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
