"""Ways of reading a topic outside any consumer group, used by several services."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from utils.kafka.interface import Consumer, KafkaTimeout, Partition, Record, UnknownTopic


def wait_until_known(partitions_for: Callable[[str], set[int]], topic: str, timeout_s: float) -> None:
    """Return once the client's cluster metadata knows `topic` (subscribing earlier can leave a fresh
    topic's partitions unassigned until the next metadata refresh); UnknownTopic after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not partitions_for(topic):
        if time.monotonic() > deadline:
            raise UnknownTopic(f"topic {topic} is not in the cluster metadata after {timeout_s:.0f}s")
        time.sleep(0.2)


def assign_from_end(consumer: Consumer, topic: str) -> list[Partition]:
    """Read every partition of `topic` from now on: a record sent after this returns will be seen."""
    partitions = [Partition(topic, p) for p in sorted(consumer.partitions_for(topic))]
    if not partitions:
        raise UnknownTopic(f"topic {topic} does not exist")
    consumer.assign(partitions)
    consumer.seek_to_end(partitions)
    for partition in partitions:
        consumer.position(partition)  # resolve now, not at the first poll
    return partitions


def read_available(
    consumer: Consumer, partition: Partition, start: int, timeout_s: float, batch: int = 5000
) -> Iterator[Record]:
    """The records of one partition from `start` that are there now: reading stops after two empty
    polls in a row (or `timeout_s`). Unlike read_range it needs no end offset, which a log written
    in transactions makes unreliable (markers and open transactions take offsets but yield nothing)."""
    consumer.assign([partition])
    consumer.seek(partition, start)
    deadline = time.monotonic() + timeout_s
    empty_polls = 0
    while empty_polls < 2 and time.monotonic() < deadline:
        records = consumer.poll(timeout_s=0.2, max_records=batch)
        empty_polls = 0 if records else empty_polls + 1
        yield from records


def read_latest(consumer: Consumer, partition: Partition, count: int, timeout_s: float = 30.0) -> list[Record]:
    """At most the last `count` records of one partition (fewer when some offsets hold transaction
    markers or aborted records)."""
    consumer.assign([partition])
    end = consumer.end_offsets([partition])[partition]
    return list(read_available(consumer, partition, max(0, end - count), timeout_s))


def read_range(
    consumer: Consumer, partition: Partition, start: int, end: int, timeout_s: float, batch: int = 5000
) -> Iterator[Record]:
    """The records of one partition with start <= offset < end, in order; `KafkaTimeout` if they do
    not all arrive within `timeout_s` of the last one received."""
    if start >= end:
        return
    consumer.assign([partition])
    consumer.seek(partition, start)
    next_offset = start
    deadline = time.monotonic() + timeout_s
    while next_offset < end:
        records = consumer.poll(timeout_s=0.5, max_records=batch)
        if not records and time.monotonic() > deadline:
            raise KafkaTimeout(f"read {partition.topic} up to offset {next_offset} of {end} before timing out")
        for record in records:
            if record.offset >= end:
                return
            next_offset = record.offset + 1
            yield record
        if records:
            deadline = time.monotonic() + timeout_s
