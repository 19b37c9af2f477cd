"""Two ways of reading a topic outside any consumer group, used by several services."""

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
