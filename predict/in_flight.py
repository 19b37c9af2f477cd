"""Batches sent but not yet committed: what lets the loop poll and score the next batch while the
broker acknowledges earlier ones.

A batch may be committed once every record it sent (answers, error answers, dead letters,
observations, and the retrain requests its observations made due) is acknowledged, and every batch
polled before it is committed too: offsets only move past records whose results are stored. The
bounds (records and bytes) make a slow broker slow the loop down instead of growing memory.
No I/O here: deliveries are passed in and only asked whether they are done.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from utils.kafka.interface import Delivery, Partition, Record
from utils.kafka.offsets import commit_offsets, replay_offsets


@dataclass
class SentBatch:
    """One polled batch and the deliveries of everything it caused."""

    records: list[Record]
    results: list[Delivery]  # answers, error answers, dead letters
    observations: list[Delivery]
    retrain_requests: list[Delivery] = field(default_factory=list)
    retrain_asked: bool = False  # its observations' acknowledged offsets have been turned into requests

    @property
    def size_bytes(self) -> int:
        return sum(len(record.value or b"") for record in self.records)

    def deliveries(self) -> Iterator[Delivery]:
        yield from self.results
        yield from self.observations
        yield from self.retrain_requests

    def first_pending(self) -> Delivery | None:
        """A delivery whose outcome is not known yet, or None."""
        return next((delivery for delivery in self.deliveries() if not delivery.done()), None)

    def raise_failures(self) -> None:
        """Raise the first delivery error (all deliveries must be done)."""
        for delivery in self.deliveries():
            delivery.result(timeout_s=0)


class InFlight:
    """Sent batches in poll order, with bounds on what they hold."""

    def __init__(self, max_records: int, max_bytes: int):
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._batches: deque[SentBatch] = deque()
        self.records = 0
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._batches)

    def add(self, batch: SentBatch) -> None:
        self._batches.append(batch)
        self.records += len(batch.records)
        self.bytes += batch.size_bytes

    def full(self) -> bool:
        """True when no further batch may be polled until the oldest completes."""
        return bool(self._batches) and (self.records >= self.max_records or self.bytes >= self.max_bytes)

    def oldest(self) -> SentBatch | None:
        return self._batches[0] if self._batches else None

    def pop_oldest(self) -> SentBatch:
        batch = self._batches.popleft()
        self.records -= len(batch.records)
        self.bytes -= batch.size_bytes
        return batch

    def replay_offsets(self) -> dict[Partition, int]:
        """Where to seek so that every record still in flight is read again; forgets them all."""
        records = [record for batch in self._batches for record in batch.records]
        self._batches.clear()
        self.records = self.bytes = 0
        return replay_offsets(records)


def offsets_to_commit(batches: list[SentBatch]) -> dict[Partition, int]:
    """The next offsets to commit after these completed batches (oldest first)."""
    return commit_offsets([record for batch in batches for record in batch.records])


@dataclass(frozen=True)
class CommitPlan:
    """One commit: these offsets, waited for or not, and what is then sent but not confirmed."""

    offsets: dict[Partition, int]
    wait: bool
    unconfirmed: dict[Partition, int]


def plan_commit(
    acknowledged: dict[Partition, int], unconfirmed: dict[Partition, int], assigned: set[Partition], stopping: bool
) -> CommitPlan:
    """The periodic commit goes without waiting; a stop waits, and sends again what earlier
    asynchronous commits carried, so that one lost on the way does not replay answered records.
    Partitions a rebalance took are the next owner's to commit."""
    unconfirmed = {partition: offset for partition, offset in unconfirmed.items() if partition in assigned}
    ours = {partition: offset for partition, offset in acknowledged.items() if partition in assigned}
    if stopping:
        return CommitPlan(unconfirmed | ours, wait=True, unconfirmed={})
    return CommitPlan(ours, wait=False, unconfirmed=unconfirmed | ours)
