"""One contract, two client libraries: every behaviour the services rely on, pinned on a real broker.

Each test runs once on kafka-python and once on confluent-kafka, through the project's interface
(`utils/kafka/interface.py`) only."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

import pytest

from tests.contract.conftest import Clients
from utils.kafka.clients import CLIENTS, create_admin
from utils.kafka.interface import (
    AuthenticationFailed,
    BrokerUnavailable,
    Consumer,
    InvalidUsage,
    KafkaError,
    KafkaTimeout,
    Partition,
    ProducerFenced,
    Record,
    RecordTooLarge,
    TopicSpec,
)
from utils.kafka.reading import assign_from_end, read_range

PARTITIONS = 3


def produce(producer, topic: str, count: int, tag: str) -> list:
    deliveries = [producer.send(topic, f"{tag}-{i}".encode(), f"key-{i % 17}".encode()) for i in range(count)]
    producer.flush(timeout_s=30)
    return [delivery.result(timeout_s=10) for delivery in deliveries]


def poll_until(consumer: Consumer, count: int, timeout_s: float = 30, max_records: int | None = None) -> list[Record]:
    """Records polled until `count` arrived (or the timeout), checking each poll's shape."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        polled = consumer.poll(0.2, max_records=max_records)
        assert max_records is None or len(polled) <= max_records
        assert all(isinstance(record, Record) for record in polled)
        for partition in {r.partition for r in polled}:
            offsets = [r.offset for r in polled if r.partition == partition]
            assert offsets == sorted(offsets), "in offset order within a partition"
        records.extend(polled)
    return records


def test_order_per_partition_commit_and_reread_from_the_committed_offset(clients):
    topic = clients.topic(PARTITIONS)
    producer = clients.producer()
    sent = produce(producer, topic, 200, "first")
    assert {ack.topic for ack in sent} == {topic}
    by_partition = defaultdict(list)
    for ack in sent:
        by_partition[ack.partition].append(ack.offset)
    for offsets in by_partition.values():  # one producer, in order: 0, 1, 2... on each partition
        assert offsets == list(range(len(offsets)))

    group = f"group-{uuid.uuid4().hex[:8]}"
    consumer = clients.consumer(group)
    consumer.subscribe(topic)
    received: list[Record] = []
    deadline = time.monotonic() + 30
    while len(received) < 200 and time.monotonic() < deadline:
        batch = poll_until(consumer, 1, timeout_s=1, max_records=50)
        last = {Partition(r.topic, r.partition): r.offset + 1 for r in batch}
        consumer.commit(last)
        received.extend(batch)
    assert sorted((r.partition, r.offset) for r in received) == sorted((a.partition, a.offset) for a in sent)
    assert {r.value for r in received} == {f"first-{i}".encode() for i in range(200)}
    key_partitions = defaultdict(set)
    for record in received:
        key_partitions[record.key].add(record.partition)
    assert all(len(partitions) == 1 for partitions in key_partitions.values()), "a key stays on one partition"
    ends = consumer.end_offsets([Partition(topic, p) for p in range(PARTITIONS)])
    for partition, end in ends.items():
        assert consumer.committed(partition) == (end or None)
    consumer.close()

    again = clients.consumer(group)
    again.subscribe(topic)
    deadline = time.monotonic() + 30
    replayed = []
    while len(again.assignment()) < PARTITIONS and time.monotonic() < deadline:
        replayed += poll_until(again, 1, timeout_s=0.2)
    assert again.assignment() == set(ends)
    replayed += poll_until(again, 1, timeout_s=2)
    assert replayed == [], "nothing before the committed offsets is delivered again"
    assert {p: again.position(p) for p in ends} == ends
    produce(producer, topic, 10, "second")
    fresh = poll_until(again, 10)
    assert sorted(r.value or b"" for r in fresh) == sorted(f"second-{i}".encode() for i in range(10))

    # The predictor's replay after a failed batch: seek back on a partition of the group's assignment.
    rewound = max(ends, key=lambda p: ends[p])
    end = again.end_offsets([rewound])[rewound]
    again.seek(rewound, 0)
    replay = poll_until(again, end)
    assert [(r.partition, r.offset) for r in replay] == [(rewound.partition, offset) for offset in range(end)]
    assert again.position(rewound) == end


def test_uncommitted_records_are_delivered_again_to_the_next_member(clients):
    topic = clients.topic(1)
    produce(clients.producer(), topic, 30, "r")
    group = f"group-{uuid.uuid4().hex[:8]}"
    first = clients.consumer(group)
    first.subscribe(topic)
    got = poll_until(first, 30)
    first.commit({Partition(topic, 0): 10})  # as if records 10-29 were never acknowledged
    first.close()
    second = clients.consumer(group)
    second.subscribe(topic)
    again = poll_until(second, 20)
    assert len(got) == 30 and [r.offset for r in again] == list(range(10, 30))


def test_an_asynchronous_commit_reaches_the_group_and_a_later_one_carries_higher_offsets(clients):
    """The predictor's periodic commit: sent without waiting, learnt by later polls."""
    topic = clients.topic(1)
    produce(clients.producer(), topic, 30, "r")
    group = f"group-{uuid.uuid4().hex[:8]}"
    first = clients.consumer(group)
    first.subscribe(topic)
    assert len(poll_until(first, 30)) == 30
    partition = Partition(topic, 0)
    for offset in (10, 20, 25):
        first.commit_async({partition: offset})
    deadline = time.monotonic() + 30
    while first.committed(partition) != 25 and time.monotonic() < deadline:
        first.poll(0.1)  # drives the client's commit callbacks
    assert first.committed(partition) == 25
    first.close()
    second = clients.consumer(group)
    second.subscribe(topic)
    assert [r.offset for r in poll_until(second, 5)] == list(range(25, 30))
    with pytest.raises(InvalidUsage):
        clients.consumer().commit_async({partition: 1})  # no group


def test_a_commit_made_when_partitions_are_revoked_is_where_the_next_member_starts(clients):
    """The pipelined predictor returns what it answered from on_revoke; the consumer commits it
    during the rebalance."""
    topic = clients.topic(2)
    produce(clients.producer(), topic, 40, "r")
    group = f"group-{uuid.uuid4().hex[:8]}"
    first = clients.consumer(group)
    revoked: list[set[Partition]] = []

    def commit_on_revoke(partitions: set[Partition]) -> dict[Partition, int]:
        if partitions:
            revoked.append(partitions)
        return {partition: 5 for partition in partitions}

    first.subscribe(topic, on_revoke=commit_on_revoke)
    assert len(poll_until(first, 40)) == 40
    second = clients.consumer(group)
    second.subscribe(topic)
    deadline = time.monotonic() + 60
    second_got: list[Record] = []
    while not revoked and time.monotonic() < deadline:
        first.poll(0.1)
        second_got += second.poll(0.1)
    assert revoked and revoked[0] == {Partition(topic, 0), Partition(topic, 1)}
    while not second.assignment() and time.monotonic() < deadline:
        first.poll(0.1)
        second_got += second.poll(0.1)
    for _ in range(30):
        first.poll(0.1)
        second_got += second.poll(0.1)
    assert second.assignment(), "the second member got a partition"
    assert second_got and min(r.offset for r in second_got) == 5, "it starts where on_revoke committed"


@pytest.mark.parametrize("round_", range(3))
def test_a_member_polling_with_very_short_timeouts_still_completes_its_rebalances(clients, round_):
    """The pipelined predictor polls for 2 ms while batches are in flight, so a poll's timeout often
    ends in the middle of a group join; the join must still complete (kafka-python 3.0.12 could
    leave it unfinished: no partitions, no heartbeats, expelled from the group)."""
    topic = clients.topic(PARTITIONS)
    produce(clients.producer(), topic, 30, "short")
    consumer = clients.consumer(f"group-{uuid.uuid4().hex[:8]}")
    # Committing inside on_revoke spends the poll's time before the join even starts.
    consumer.subscribe(topic, on_revoke=lambda partitions: dict.fromkeys(partitions, 0))
    values: set[bytes | None] = set()
    deadline = time.monotonic() + 30
    while len(values) < 30 and time.monotonic() < deadline:
        values |= {record.value for record in consumer.poll(0.001)}  # what on_revoke committed is read again
        time.sleep(0.005)  # scoring and sending between polls
    assert values == {f"short-{i}".encode() for i in range(30)}
    assert consumer.assignment() == {Partition(topic, p) for p in range(PARTITIONS)}


def test_assign_seek_position_end_offsets(clients):
    topic = clients.topic(PARTITIONS)
    sent = produce(clients.producer(), topic, 60, "old")
    counts = {Partition(topic, p): sum(a.partition == p for a in sent) for p in range(PARTITIONS)}
    consumer = clients.consumer()
    assert consumer.partitions_for(topic) == set(range(PARTITIONS))
    assert consumer.partitions_for(f"missing-{uuid.uuid4().hex[:8]}") == set()
    partitions = sorted(counts)
    consumer.assign(partitions)
    assert consumer.assignment() == set(partitions)
    assert consumer.end_offsets(partitions) == counts

    consumer.seek_to_end(partitions)
    assert {p: consumer.position(p) for p in partitions} == counts
    consumer.seek_to_beginning(partitions)
    assert {p: consumer.position(p) for p in partitions} == dict.fromkeys(partitions, 0)
    assert len(poll_until(consumer, 60)) == 60
    assert {p: consumer.position(p) for p in partitions} == counts

    busiest = max(partitions, key=lambda p: counts[p])
    consumer.seek(busiest, counts[busiest] - 3)
    replay = poll_until(consumer, 3)
    assert [(r.partition, r.offset) for r in replay] == [(busiest.partition, counts[busiest] - i) for i in (3, 2, 1)]
    assert consumer.position(busiest) == counts[busiest]
    with pytest.raises(InvalidUsage):
        consumer.commit({busiest: 1})  # no group
    with pytest.raises(InvalidUsage):
        consumer.position(Partition(f"other-{topic}", 0))
    with pytest.raises(InvalidUsage):
        consumer.seek(Partition(f"other-{topic}", 0), 0)


def test_groupless_consumer_from_end_sees_only_new_records(clients):
    topic = clients.topic(PARTITIONS)
    producer = clients.producer()
    produce(producer, topic, 50, "old")
    consumer = clients.consumer(fetch_max_wait_ms=10)
    assign_from_end(consumer, topic)
    produce(producer, topic, 20, "new")
    records = poll_until(consumer, 20)
    records += poll_until(consumer, 1, timeout_s=1)
    assert sorted(r.value or b"" for r in records) == sorted(f"new-{i}".encode() for i in range(20))


@pytest.mark.parametrize("start, end", [(0, 500), (123, 1000), (999, 1000), (400, 400)])
def test_reading_a_topic_up_to_an_offset(clients, start, end):
    topic = clients.topic(1)
    produce(clients.producer(linger_ms=5), topic, 1000, "obs")
    consumer = clients.consumer(max_poll_records=100)
    records = list(read_range(consumer, Partition(topic, 0), start, end, timeout_s=10, batch=100))
    assert [r.offset for r in records] == list(range(start, end))
    assert [r.value for r in records] == [f"obs-{i}".encode() for i in range(start, end)]


def test_reading_past_the_end_times_out(clients):
    topic = clients.topic(1)
    produce(clients.producer(), topic, 5, "obs")
    consumer = clients.consumer()
    with pytest.raises(KafkaError):
        list(read_range(consumer, Partition(topic, 0), 0, 10, timeout_s=2))


def test_delivery_errors_surface_on_the_delivery(clients):
    topic = clients.topic(1)
    producer = clients.producer(max_block_ms=2000)
    delivery = producer.send(topic, b"x" * 2_000_000)
    with pytest.raises(RecordTooLarge):
        delivery.result(timeout_s=10)
    assert delivery.done()
    ok = producer.send(topic, b"fine")
    producer.flush(timeout_s=10)
    assert ok.result(timeout_s=0).offset == 0, "a refused record does not stop the next one"


def test_deliveries_complete_without_a_flush(clients):
    """The pipelined predictor asks done() instead of flushing: outcomes must arrive on their own."""
    topic = clients.topic(1)
    producer = clients.producer()
    deliveries = [producer.send(topic, f"r{i}".encode()) for i in range(50)]
    deadline = time.monotonic() + 10
    while not all(delivery.done() for delivery in deliveries) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [delivery.result(timeout_s=0).offset for delivery in deliveries] == list(range(50))


def test_topics_are_created_once():
    for kind in CLIENTS:
        settings = Clients(kind).settings
        name = f"contract-admin-{uuid.uuid4().hex[:8]}"
        admin = create_admin(settings)
        try:
            assert admin.create_topics([TopicSpec(name, 2, {"retention.ms": "-1"})]) == [name]
            assert admin.create_topics([TopicSpec(name, 2)]) == []
            assert admin.replication_factors([name, f"{name}-absent"]) == {name: 1}  # one broker
            assert len(admin.brokers()) == 1
        finally:
            admin.close()


def test_a_replication_factor_the_cluster_cannot_hold_is_refused():
    for kind in CLIENTS:
        admin = create_admin(Clients(kind).settings)
        try:
            with pytest.raises(KafkaError):
                admin.create_topics([TopicSpec(f"contract-rf-{uuid.uuid4().hex[:8]}", 1, replication_factor=3)])
        finally:
            admin.close()


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_refused_login_raises_authentication_failed(private_broker, kind):
    wrong = Clients(
        kind,
        private_broker.sasl_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="pipeline",
        sasl_password="not-the-password",
    )
    # As a service does: retriable errors (the listener may still be starting) are retried; a refused
    # login must end it with AuthenticationFailed, not retry forever.
    deadline = time.monotonic() + 60
    with pytest.raises(AuthenticationFailed, match="(?i)invalid username or password|authentication"):
        while time.monotonic() < deadline:
            try:
                admin = create_admin(wrong.settings)
                try:
                    admin.create_topics([TopicSpec(f"never-{uuid.uuid4().hex[:8]}", 1)])
                finally:
                    admin.close()
            except (BrokerUnavailable, KafkaTimeout):
                time.sleep(1)


def test_a_refusal_read_late_is_still_a_refusal(private_broker, monkeypatch):
    """On a busy machine kafka-python reads the broker's refusal in the same pass as the close that
    follows it (kafka-python 3.0.12 dropped such bytes and timed out instead): a client that waits
    0.4 s before each read still gets AuthenticationFailed."""
    import kafka.net.transport as ktransport

    read = ktransport.KafkaTCPTransport._sock_recv

    def read_late(transport):
        time.sleep(0.4)  # longer than the broker's connection.failed.authentication.delay.ms (100 ms)
        return read(transport)

    monkeypatch.setattr(ktransport.KafkaTCPTransport, "_sock_recv", read_late)
    wrong = Clients(
        "kafka-python",
        private_broker.sasl_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="pipeline",
        sasl_password="not-the-password",
    )
    with pytest.raises(AuthenticationFailed, match="(?i)invalid username or password"):
        admin = create_admin(wrong.settings)
        try:
            admin.create_topics([TopicSpec(f"never-{uuid.uuid4().hex[:8]}", 1)])
        finally:
            admin.close()


def read_all(clients: Clients, topic: str, read_committed: bool, settle_s: float = 3.0) -> list[bytes]:
    """Every record value of a one-partition topic a fresh reader sees within `settle_s`."""
    reader = clients.consumer(read_committed=read_committed)
    reader.assign([Partition(topic, 0)])
    reader.seek_to_beginning([Partition(topic, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        values += [record.value or b"" for record in reader.poll(0.2)]
    return values


def consume_in_group(clients: Clients, topic: str, count: int) -> tuple[Consumer, list[Record]]:
    produce(clients.producer(), topic, count, "in")
    consumer = clients.consumer(f"group-{uuid.uuid4().hex[:8]}", read_committed=True)
    consumer.subscribe(topic)
    return consumer, poll_until(consumer, count)


def test_a_committed_transaction_shows_its_records_and_moves_the_group_together(clients):
    source, sink = clients.topic(1), clients.topic(1)
    consumer, records = consume_in_group(clients, source, 10)
    producer = clients.transactional_producer(f"tx-{uuid.uuid4().hex[:8]}")
    producer.begin_transaction()
    for record in records:
        producer.send(sink, b"out-" + (record.value or b""))
    producer.commit_transaction({Partition(source, 0): 10}, consumer)
    assert read_all(clients, sink, read_committed=True) == [b"out-in-" + str(i).encode() for i in range(10)]
    assert consumer.committed(Partition(source, 0)) == 10


def test_an_aborted_transaction_shows_nothing_and_moves_no_offset(clients):
    source, sink = clients.topic(1), clients.topic(1)
    consumer, _ = consume_in_group(clients, source, 5)
    producer = clients.transactional_producer(f"tx-{uuid.uuid4().hex[:8]}")
    producer.begin_transaction()
    for i in range(5):
        producer.send(sink, f"aborted-{i}".encode())
    producer.flush(timeout_s=10)  # on the broker, but never committed
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send(sink, b"committed")
    producer.commit_transaction({}, consumer)
    assert read_all(clients, sink, read_committed=True) == [b"committed"]
    assert len(read_all(clients, sink, read_committed=False)) == 6, "a reader of uncommitted records sees them"
    assert consumer.committed(Partition(source, 0)) is None


def test_a_newer_producer_with_the_same_transactional_id_fences_the_older(clients):
    source, sink = clients.topic(1), clients.topic(1)
    consumer, _ = consume_in_group(clients, source, 3)
    transactional_id = f"tx-{uuid.uuid4().hex[:8]}"
    zombie = clients.transactional_producer(transactional_id)
    zombie.begin_transaction()
    zombie.send(sink, b"from-the-zombie")
    zombie.flush(timeout_s=10)
    successor = clients.transactional_producer(transactional_id)  # aborts the zombie's open transaction
    with pytest.raises(ProducerFenced):
        zombie.commit_transaction({Partition(source, 0): 3}, consumer)
    successor.begin_transaction()
    successor.send(sink, b"from-the-successor")
    successor.commit_transaction({Partition(source, 0): 3}, consumer)
    assert read_all(clients, sink, read_committed=True) == [b"from-the-successor"]
    assert consumer.committed(Partition(source, 0)) == 3
