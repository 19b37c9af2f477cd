"""The kafka-python transactional producer's recovery when the library's own calls never return
(a coordinator that died mid-request): the library itself stands in for the broker here, as such a
hang cannot be caused on purpose on a real one."""

from __future__ import annotations

from typing import Any

import kafka.errors as kerrors
import pytest

from utils.kafka import kafka_python
from utils.kafka.interface import Partition, ProducerOptions, TransactionAborted, TransactionInDoubt
from utils.settings import KafkaSettings


class _Never:
    """A transaction manager's request that never completes."""

    def wait(self, timeout_ms: int) -> bool:
        return False


class _StuckLibraryProducer:
    """kafka-python's producer, as seen after a failover: starts as told, and every request of a
    transaction's end (offsets, commit, abort) hangs."""

    starts: list[bool] = []  # whether each new instance's start succeeds, in order
    made: list[_StuckLibraryProducer] = []

    def __init__(self, **config: Any) -> None:
        self.start_succeeds = self.starts.pop(0)
        self.closed = False
        self.begun = 0
        self.aborts = 0
        self._transaction_manager = self
        self._sender = self
        self.made.append(self)

    def init_transactions(self) -> None:
        if not self.start_succeeds:
            raise kerrors.KafkaTimeoutError("Timeout expired while initializing transactional state in 60000ms.")

    def begin_abort(self) -> _Never:
        self.aborts += 1
        return _Never()

    def send_offsets_to_transaction(self, offsets: object, group: object) -> _Never:
        return _Never()

    def begin_commit(self) -> _Never:
        return _Never()

    def wakeup(self) -> None:
        pass

    def begin_transaction(self) -> None:
        self.begun += 1

    def close(self, timeout: float) -> None:
        self.closed = True


@pytest.mark.parametrize(
    "starts, producers_made",
    [
        ([True, True], 2),  # the abort hangs; the new producer starts: it serves the next transaction
        ([True, False, True], 3),  # its start times out too: the next transaction starts yet another
        ([True, False, False, True], 4),
    ],
)
def test_a_stuck_transactional_producer_is_replaced_until_one_starts(monkeypatch, starts, producers_made):
    monkeypatch.setattr(_StuckLibraryProducer, "starts", list(starts))
    monkeypatch.setattr(_StuckLibraryProducer, "made", [])
    monkeypatch.setattr(kafka_python, "KafkaProducer", _StuckLibraryProducer)
    producer = kafka_python.KafkaPythonTransactionalProducer(
        KafkaSettings(), ProducerOptions(client_id="test", transactional_id="test-0")
    )
    producer.abort_transaction(timeout_s=0.01)  # hangs: replaced
    for _ in range(producers_made - 3):
        with pytest.raises(kafka_python.KafkaError):
            producer.begin_transaction()  # the replacement's start timed out: replaced again
    producer.begin_transaction()

    made = _StuckLibraryProducer.made
    assert len(made) == producers_made
    assert [p.closed for p in made] == [True] * (producers_made - 1) + [False]
    assert made[-1].begun == 1, "the transaction begins on the producer that started"


class _Consumer:
    def group_metadata(self) -> object:
        return object()


@pytest.mark.parametrize(
    "offsets, raised",
    [
        ({Partition("requests", 0): 5}, TransactionAborted),  # its offsets hang: never committed
        ({}, TransactionInDoubt),  # its commit hangs: the new producer's start finishes it, either way
    ],
)
def test_a_commit_that_times_out_gets_a_new_producer(monkeypatch, offsets, raised):
    monkeypatch.setattr(_StuckLibraryProducer, "starts", [True, True])
    monkeypatch.setattr(_StuckLibraryProducer, "made", [])
    monkeypatch.setattr(kafka_python, "KafkaProducer", _StuckLibraryProducer)
    producer = kafka_python.KafkaPythonTransactionalProducer(
        KafkaSettings(), ProducerOptions(client_id="test", transactional_id="test-0")
    )
    consumer: Any = _Consumer()
    producer.begin_transaction()
    with pytest.raises(raised):
        producer.commit_transaction(offsets, consumer, timeout_s=0.01)
    made = _StuckLibraryProducer.made
    assert len(made) == 2 and made[0].closed and not made[1].closed, "not waited on again: a new producer"
    assert made[0].aborts == 0, "no abort waited for first: the new producer's start aborts"
