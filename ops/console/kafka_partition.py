"""Which partition of the topic holds a stream's messages: the relay keys each message by its
stream id and lets the producer's default partitioner (murmur2, as Java's) choose."""

from __future__ import annotations

from kafka.partitioner.default import murmur2


def partition_of(stream_id: str, partitions: int) -> int:
    """The partition the default partitioner picks for this key."""
    hashed: int = murmur2(stream_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions
