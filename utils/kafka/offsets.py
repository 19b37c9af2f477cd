"""Offsets to commit after a batch, and to seek back to for a replay: pure, shared by the services."""

from __future__ import annotations

from collections.abc import Iterable

from utils.kafka.interface import Partition, Record


def commit_offsets(records: Iterable[Record]) -> dict[Partition, int]:
    """Per partition, the offset after the last record of the batch: what to commit once all of the
    batch's results are acknowledged."""
    offsets: dict[Partition, int] = {}
    for record in records:
        partition = Partition(record.topic, record.partition)
        offsets[partition] = max(record.offset + 1, offsets.get(partition, 0))
    return offsets


def replay_offsets(records: Iterable[Record]) -> dict[Partition, int]:
    """Per partition, the first offset of the batch: where to seek back to replay it."""
    offsets: dict[Partition, int] = {}
    for record in records:
        partition = Partition(record.topic, record.partition)
        offsets[partition] = min(record.offset, offsets.get(partition, record.offset))
    return offsets
