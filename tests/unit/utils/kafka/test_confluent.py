"""The librdkafka transactional producer's recovery from calls that time out during a failover:
which failures replace the producer (a new one with the same id aborts what the old one left open)
and which only abort. librdkafka's producer is stood in for, as its timeouts cannot be caused on
purpose on a real broker."""

from __future__ import annotations

from typing import Any

import confluent_kafka as ck
import pytest

from utils.kafka import confluent
from utils.kafka.interface import KafkaTimeout, ProducerOptions, TransactionAborted
from utils.settings import KafkaSettings

E = ck.KafkaError


class _LibraryProducer:
    """librdkafka's producer; `failing` maps a call's name to the error codes it raises, in turn,
    shared by every instance made (a new producer meets the same cluster)."""

    failing: dict[str, list[int]] = {}
    made: list[_LibraryProducer] = []

    def __init__(self, config: dict[str, Any]) -> None:
        self.calls: list[str] = []
        self.made.append(self)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        codes = self.failing.get(name)
        if codes and (code := codes.pop(0)):  # 0: this one succeeds
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
    "failing, producers_made, calls_of_the_first",
    [
        # a commit that times out may be waiting on a coordinator librdkafka never asks again
        ({"commit": [E._TIMED_OUT]}, 2, ["init", "begin", "offsets", "commit"]),
        ({"offsets": [E._TIMED_OUT]}, 2, ["init", "begin", "offsets"]),
        # another commit failure: aborted, and the batch read again, on the same producer
        (
            {"commit": [E.CONCURRENT_TRANSACTIONS]},
            1,
            ["init", "begin", "offsets", "commit", "abort", "begin", "commit"],
        ),
        # its abort failing too: a new producer
        (
            {"commit": [E.CONCURRENT_TRANSACTIONS], "abort": [E._TIMED_OUT]},
            2,
            ["init", "begin", "offsets", "commit", "abort"],
        ),
        # the new producer's start times out: the next transaction starts yet another
        ({"commit": [E._TIMED_OUT], "init": [0, E._TIMED_OUT]}, 3, ["init", "begin", "offsets", "commit"]),
    ],
)
def test_a_transaction_that_fails_is_aborted_or_its_producer_replaced(
    monkeypatch, failing, producers_made, calls_of_the_first
):
    monkeypatch.setattr(_LibraryProducer, "failing", {name: list(codes) for name, codes in failing.items()})
    monkeypatch.setattr(_LibraryProducer, "made", [])
    monkeypatch.setattr(confluent.ck, "Producer", _LibraryProducer)
    producer = confluent.ConfluentTransactionalProducer(
        KafkaSettings(), ProducerOptions(client_id="test", transactional_id="test-0")
    )
    consumer: Any = _Consumer()  # what the producer asks of it: its group metadata
    producer.begin_transaction()
    with pytest.raises(TransactionAborted):
        producer.commit_transaction({confluent.Partition("requests", 0): 5}, consumer)
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
