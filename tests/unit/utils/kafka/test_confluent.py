"""The librdkafka transactional producer's recovery from calls that time out, or outlive their
timeout, during a failover: which failures replace the producer (a new one with the same id
finishes what the old one left open) and which only abort, and which leave the commit in doubt.
librdkafka's producer is stood in for, as its timeouts cannot be caused on purpose on a real broker."""

from __future__ import annotations

import threading
from typing import Any

import confluent_kafka as ck
import pytest

from utils.kafka import confluent
from utils.kafka.interface import KafkaTimeout, ProducerOptions, TransactionAborted, TransactionInDoubt
from utils.settings import KafkaSettings

E = ck.KafkaError
HANGS = -1  # a call that does not return, whatever its timeout (confluentinc/librdkafka#5511)


class _LibraryProducer:
    """librdkafka's producer; `failing` maps a call's name to the error codes it raises, in turn,
    shared by every instance made (a new producer meets the same cluster)."""

    failing: dict[str, list[int]] = {}
    made: list[_LibraryProducer] = []
    released = threading.Event()  # lets the calls that hang return, at the end of a test

    def __init__(self, config: dict[str, Any]) -> None:
        self.calls: list[str] = []
        self.made.append(self)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        codes = self.failing.get(name)
        if codes and (code := codes.pop(0)):  # 0: this one succeeds
            if code == HANGS:
                self.released.wait()
                raise ck.KafkaException(ck.KafkaError(E._FENCED))  # what the producer replacing it caused
            raise ck.KafkaException(ck.KafkaError(code))

    def init_transactions(self, timeout: float) -> None:
        self._call("init")

    def begin_transaction(self) -> None:
        self._call("begin")

    def send_offsets_to_transaction(self, *args: Any) -> None:
        self._call("offsets")

    def commit_transaction(self, timeout: float) -> None:
        self._call("commit")

    def abort_transaction(self, timeout: float) -> None:
        self._call("abort")

    def purge(self) -> None:
        pass

    def poll(self, timeout: float) -> int:
        return 0


class _Consumer:
    def group_metadata(self) -> object:
        return object()


@pytest.mark.parametrize(
    "failing, raised, producers_made, calls_of_the_first",
    [
        # a call that times out may be waiting on a coordinator librdkafka never asks again
        ({"commit": [E._TIMED_OUT]}, TransactionInDoubt, 2, ["init", "begin", "offsets", "commit"]),
        ({"offsets": [E._TIMED_OUT]}, TransactionAborted, 2, ["init", "begin", "offsets"]),
        # one that outlives its timeout is given up: a new producer, as for a timeout
        ({"offsets": [HANGS]}, TransactionAborted, 2, ["init", "begin", "offsets"]),
        # another commit failure: aborted, and the batch read again, on the same producer
        (
            {"commit": [E.CONCURRENT_TRANSACTIONS]},
            TransactionInDoubt,
            1,
            ["init", "begin", "offsets", "commit", "abort", "begin", "commit"],
        ),
        (
            {"offsets": [E.CONCURRENT_TRANSACTIONS]},
            TransactionAborted,
            1,
            ["init", "begin", "offsets", "abort"] + ["begin", "commit"],
        ),
        # its abort failing too: a new producer
        (
            {"commit": [E.CONCURRENT_TRANSACTIONS], "abort": [E._TIMED_OUT]},
            TransactionInDoubt,
            2,
            ["init", "begin", "offsets", "commit", "abort"],
        ),
        (
            {"offsets": [E.CONCURRENT_TRANSACTIONS], "abort": [E._TIMED_OUT]},
            TransactionAborted,
            2,
            ["init", "begin", "offsets", "abort"],
        ),
        # the new producer's start times out: the next transaction starts yet another
        (
            {"commit": [E._TIMED_OUT], "init": [0, E._TIMED_OUT]},
            TransactionInDoubt,
            3,
            ["init", "begin", "offsets", "commit"],
        ),
    ],
)
def test_a_transaction_that_fails_is_aborted_or_its_producer_replaced(
    monkeypatch, failing, raised, producers_made, calls_of_the_first
):
    monkeypatch.setattr(_LibraryProducer, "failing", {name: list(codes) for name, codes in failing.items()})
    monkeypatch.setattr(_LibraryProducer, "made", [])
    monkeypatch.setattr(_LibraryProducer, "released", threading.Event())
    monkeypatch.setattr(confluent.ck, "Producer", _LibraryProducer)
    monkeypatch.setattr(confluent, "OUTLIVED_AFTER_S", 0.05)
    producer = confluent.ConfluentTransactionalProducer(
        KafkaSettings(), ProducerOptions(client_id="test", transactional_id="test-0")
    )
    consumer: Any = _Consumer()  # what the producer asks of it: its group metadata
    producer.begin_transaction()
    with pytest.raises(raised):
        producer.commit_transaction({confluent.Partition("requests", 0): 5}, consumer, timeout_s=0.01)
    producer.abort_transaction()  # the loop's own abort after a failure: nothing left open, no call
    while True:  # the loop tries the batch again until a producer has started
        try:
            producer.begin_transaction()
            break
        except KafkaTimeout:
            producer.abort_transaction()
    producer.commit_transaction({}, consumer)

    made = _LibraryProducer.made
    assert len(made) == producers_made
    assert made[0].calls == calls_of_the_first
    assert made[-1].calls[-2:] == ["begin", "commit"], "the batch read again commits on the last producer"
    _LibraryProducer.released.set()  # what hung returns (its thread ends)
