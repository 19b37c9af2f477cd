"""A batch read again after a failure: a seek that fails (the cluster failing over) is tried again
before anything else is read, so that reading on cannot skip what the batch did not make durable;
after a transaction in doubt, from the group's committed offsets, so that a batch whose commit did
land is not answered twice."""

from __future__ import annotations

import pytest

from predict.loop import ServingLoop
from utils.kafka.interface import KafkaTimeout, Partition, Record

P0, P1, GONE = Partition("requests", 0), Partition("requests", 1), Partition("requests", 2)


class _Consumer:
    def __init__(self, failing_seeks: int, committed: dict[Partition, int] | None = None) -> None:
        self.failing_seeks = failing_seeks
        self.commits = committed or {}
        self.failing_lookups = 0
        self.calls: list[tuple] = []

    def committed(self, partition: Partition) -> int | None:
        if self.failing_lookups:
            self.failing_lookups -= 1
            raise KafkaTimeout("coordinator moving")
        return self.commits.get(partition)

    def assignment(self) -> set[Partition]:
        return {P0, P1}

    def seek(self, partition: Partition, offset: int) -> None:
        if self.failing_seeks:
            self.failing_seeks -= 1
            raise KafkaTimeout("no leader")
        self.calls.append(("seek", partition, offset))

    def poll(self, timeout_s: float) -> list[Record]:
        self.calls.append(("poll",))
        return []


def _loop(consumer: _Consumer) -> ServingLoop:
    loop = object.__new__(ServingLoop)  # only the consumer side of the loop is exercised
    loop.consumer = consumer  # type: ignore[assignment]
    loop._unreplayed = {}
    loop._from_committed = {}
    return loop


def _sought_before_a_read(loop: ServingLoop, consumer: _Consumer, failures: int) -> dict[Partition, int]:
    """Polls until one reads (after `failures` failed attempts); the offsets sought before it."""
    for _ in range(failures + 1):
        try:
            loop.poll(0)
        except KafkaTimeout:
            assert ("poll",) not in consumer.calls, "nothing is read before the rewind is done"
    assert consumer.calls[-1] == ("poll",)
    return {call[1]: call[2] for call in consumer.calls if call[0] == "seek"}


@pytest.mark.parametrize(
    "failing_seeks, rewinds, sought",
    [
        (0, [{P0: 10, GONE: 3}], {P0: 10}),  # a partition no longer assigned is its next owner's
        (1, [{P0: 10}], {P0: 10}),
        (3, [{P0: 10}], {P0: 10}),
        # a second failure before the first seek succeeded: the earlier offset of the two
        (1, [{P0: 10, P1: 4}, {P0: 12, P1: 2}], {P0: 10, P1: 2}),
    ],
)
def test_a_failed_rewind_is_sought_before_the_next_read(failing_seeks, rewinds, sought):
    consumer = _Consumer(failing_seeks)
    loop = _loop(consumer)
    for replay in rewinds:
        try:
            loop.rewind(replay)
        except KafkaTimeout:
            pass
    assert _sought_before_a_read(loop, consumer, failing_seeks) == sought


@pytest.mark.parametrize(
    "committed, failing_lookups, sought",
    [
        ({P0: 15, P1: 4}, 0, {P0: 15, P1: 4}),  # P0's batch (10-14) did commit: not read again
        ({P0: 10}, 0, {P0: 10, P1: 4}),  # P1 never committed by the group: from the batch's start
        ({P0: 15, P1: 4}, 2, {P0: 15, P1: 4}),  # the look-up fails twice: asked again before a read
    ],
)
def test_a_transaction_in_doubt_is_read_again_from_the_groups_commit(committed, failing_lookups, sought):
    consumer = _Consumer(0, committed)
    consumer.failing_lookups = failing_lookups
    loop = _loop(consumer)
    try:
        loop.rewind_to_committed({P0: 10, P1: 4, GONE: 7})
    except KafkaTimeout:
        pass
    assert _sought_before_a_read(loop, consumer, failing_lookups) == sought
