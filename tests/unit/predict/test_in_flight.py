"""What may be committed, and when the loop must wait, with deliveries whose outcome the test sets."""

import pytest

from predict.in_flight import CommitPlan, InFlight, SentBatch, offsets_to_commit, plan_commit
from utils.kafka.interface import Acknowledgement, DeliveryFailed, Partition, Record


class SetDelivery:
    def __init__(self, offset: int | None = None, error: Exception | None = None):
        self.offset, self.error = offset, error

    def done(self) -> bool:
        return self.offset is not None or self.error is not None

    def result(self, timeout_s=None) -> Acknowledgement:
        if self.error is not None:
            raise self.error
        assert self.offset is not None, "result() of a pending delivery"
        return Acknowledgement("t", 0, self.offset)


def records(partition: int, *offsets: int, size: int = 10) -> list[Record]:
    return [Record("app", partition, offset, None, b"x" * size) for offset in offsets]


def batch(recs, *deliveries) -> SentBatch:
    return SentBatch(recs, list(deliveries), [])


@pytest.mark.parametrize(
    "outcomes, pending_index",
    [
        ([1, 2, 3], None),
        ([1, None, 3], 1),
        ([None, None], 0),
        ([], None),
    ],
)
def test_first_pending_names_a_delivery_still_waiting(outcomes, pending_index):
    deliveries = [SetDelivery(offset) for offset in outcomes]
    sent = batch(records(0, 1), *deliveries)
    expected = None if pending_index is None else deliveries[pending_index]
    assert sent.first_pending() is expected


def test_observations_and_retrain_requests_count_as_deliveries_of_the_batch():
    sent = SentBatch(records(0, 1), [SetDelivery(5)], [SetDelivery(7)])
    assert sent.first_pending() is None
    waiting = SetDelivery()
    sent.retrain_requests.append(waiting)
    assert sent.first_pending() is waiting


def test_a_failed_delivery_raises_when_the_batch_is_checked():
    sent = batch(records(0, 1), SetDelivery(1), SetDelivery(error=DeliveryFailed("no")))
    assert sent.first_pending() is None
    with pytest.raises(DeliveryFailed):
        sent.raise_failures()


@pytest.mark.parametrize(
    "max_records, max_bytes, sizes, full",
    [
        (10, 10_000, [3, 3], False),
        (6, 10_000, [3, 3], True),
        (100, 50, [3, 3], True),  # 6 records of 10 bytes
        (1, 1, [], False),  # nothing in flight: never full
    ],
)
def test_full_when_either_bound_is_reached(max_records, max_bytes, sizes, full):
    in_flight = InFlight(max_records, max_bytes)
    offset = 0
    for size in sizes:
        in_flight.add(batch(records(0, *range(offset, offset + size))))
        offset += size
    assert in_flight.full() is full


def test_popping_releases_what_the_batch_held():
    in_flight = InFlight(100, 10_000)
    in_flight.add(batch(records(0, 1, 2)))
    in_flight.add(batch(records(0, 3)))
    first = in_flight.pop_oldest()
    assert [r.offset for r in first.records] == [1, 2]
    assert (len(in_flight), in_flight.records, in_flight.bytes) == (1, 1, 10)


def test_commit_covers_completed_batches_per_partition():
    completed = [batch(records(0, 5, 6) + records(1, 40)), batch(records(0, 7) + records(2, 3))]
    assert offsets_to_commit(completed) == {Partition("app", 0): 8, Partition("app", 1): 41, Partition("app", 2): 4}


def test_replay_rewinds_to_the_first_record_still_in_flight_and_forgets_everything():
    in_flight = InFlight(100, 10_000)
    in_flight.add(batch(records(0, 10, 11) + records(1, 3)))
    in_flight.add(batch(records(0, 12) + records(1, 4)))
    assert in_flight.replay_offsets() == {Partition("app", 0): 10, Partition("app", 1): 3}
    assert (len(in_flight), in_flight.records, in_flight.bytes, in_flight.oldest()) == (0, 0, 0, None)


A, B, C = Partition("app", 0), Partition("app", 1), Partition("app", 2)


@pytest.mark.parametrize(
    "acknowledged, unconfirmed, assigned, stopping, plan",
    [
        # Periodic: only the new offsets, without waiting; they join the unconfirmed ones.
        ({A: 5}, {}, {A, B}, False, CommitPlan({A: 5}, wait=False, unconfirmed={A: 5})),
        ({A: 9}, {A: 5, B: 3}, {A, B}, False, CommitPlan({A: 9}, wait=False, unconfirmed={A: 9, B: 3})),
        # A stop waits, and carries again what asynchronous commits sent (one may have been lost).
        ({A: 9}, {A: 5, B: 3}, {A, B}, True, CommitPlan({A: 9, B: 3}, wait=True, unconfirmed={})),
        ({}, {B: 3}, {A, B}, True, CommitPlan({B: 3}, wait=True, unconfirmed={})),
        # A partition a rebalance took is the next owner's: neither committed nor remembered.
        ({A: 9, C: 4}, {C: 2}, {A, B}, False, CommitPlan({A: 9}, wait=False, unconfirmed={A: 9})),
        ({C: 4}, {C: 2}, {A}, True, CommitPlan({}, wait=True, unconfirmed={})),
    ],
)
def test_periodic_commits_do_not_wait_and_a_stop_confirms_them(acknowledged, unconfirmed, assigned, stopping, plan):
    assert plan_commit(acknowledged, unconfirmed, assigned, stopping) == plan
