"""The confluent-kafka adapter (utils/confluent_client.py) and kafka-python's own clients, held to one
behaviour on a real broker: every test runs once per client library."""

from __future__ import annotations

import os
import time
import uuid
from collections import defaultdict

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import IllegalStateError, KafkaTimeoutError, MessageSizeTooLargeError
from kafka.structs import OffsetAndMetadata

from utils.confluent_client import ConfluentConsumer, create_confluent_consumer, create_confluent_producer
from utils.kafka_io import assign_from_end, subscribe
from utils.settings import KafkaSettings

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
PARTITIONS = 3
# The options utils/kafka_io.py gives every producer and consumer.
PRODUCER_OPTIONS = {"acks": "all", "enable_idempotence": True, "linger_ms": 1}
CONSUMER_OPTIONS = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "session_timeout_ms": 10000,
    "heartbeat_interval_ms": 3000,
}


class Clients:
    """Builds producers and consumers of one library from the same kafka-python-style options."""

    def __init__(self, kind: str):
        self.kind = kind
        self.config = KafkaSettings(bootstrap_servers=BOOTSTRAP).client_config()
        self.producers: list = []
        self.consumers: list = []

    def producer(self, **options):
        options = {"client_id": f"test-{self.kind}", **PRODUCER_OPTIONS, **options}
        if self.kind == "kafka-python":
            producer = KafkaProducer(**self.config, **options)
        else:
            producer = create_confluent_producer(self.config, **options)
        self.producers.append(producer)
        return producer

    def consumer(self, group_id: str | None, **options):
        options = {"client_id": f"test-{self.kind}", "group_id": group_id, **CONSUMER_OPTIONS, **options}
        if self.kind == "kafka-python":
            consumer = KafkaConsumer(**self.config, **options)
        else:
            consumer = create_confluent_consumer(self.config, **options)
        self.consumers.append(consumer)
        return consumer

    def close_all(self) -> None:
        for consumer in self.consumers:
            consumer.close(autocommit=False)
        for producer in self.producers:
            producer.close(timeout=5)


@pytest.fixture(params=["kafka-python", "confluent"])
def clients(request):
    built = Clients(request.param)
    yield built
    built.close_all()


@pytest.fixture
def topic():
    name = f"it-clients-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="test-admin")
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    yield name
    admin.delete_topics([name])
    admin.close()


def produce(producer, topic: str, count: int, tag: str) -> list:
    futures = [producer.send(topic, value=f"{tag}-{i}".encode(), key=f"key-{i % 17}".encode()) for i in range(count)]
    producer.flush(timeout=30)
    return [future.get(timeout=10) for future in futures]


def poll_records(consumer, count: int, timeout_s: float = 30, max_records: int | None = None) -> list:
    """Records polled until `count` arrived (or the timeout), checking each batch's shape."""
    records: list = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        polled = consumer.poll(timeout_ms=200, max_records=max_records)
        assert max_records is None or sum(len(batch) for batch in polled.values()) <= max_records
        for partition, batch in polled.items():
            assert isinstance(partition, TopicPartition)
            assert all((r.topic, r.partition) == (partition.topic, partition.partition) for r in batch)
            assert [r.offset for r in batch] == sorted(r.offset for r in batch)
            records.extend(batch)
    return records


def test_produce_consume_commit_then_no_redelivery(clients, topic):
    producer = clients.producer()
    sent = produce(producer, topic, 200, "first")
    assert {m.topic for m in sent} == {topic}
    by_partition = defaultdict(list)
    for metadata in sent:
        by_partition[metadata.partition].append(metadata.offset)
    assert set(by_partition) <= set(range(PARTITIONS))
    for offsets in by_partition.values():  # one producer, in order: 0, 1, 2... on each partition
        assert offsets == list(range(len(offsets)))

    group = f"group-{uuid.uuid4().hex[:8]}"
    consumer = clients.consumer(group, max_poll_records=500)
    subscribe(consumer, topic)
    received = []
    deadline = time.monotonic() + 30
    while len(received) < 200 and time.monotonic() < deadline:
        batch = poll_records(consumer, 1, timeout_s=1, max_records=50)
        offsets = {TopicPartition(r.topic, r.partition): OffsetAndMetadata(r.offset + 1, "", -1) for r in batch}
        if offsets:
            consumer.commit(offsets)
        received.extend(batch)
    assert sorted((r.partition, r.offset) for r in received) == sorted((m.partition, m.offset) for m in sent)
    assert {r.value for r in received} == {f"first-{i}".encode() for i in range(200)}
    key_partitions = defaultdict(set)
    for record in received:
        key_partitions[record.key].add(record.partition)
    assert all(len(partitions) == 1 for partitions in key_partitions.values())
    ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
    for partition, end in ends.items():
        assert consumer.committed(partition) == (end or None)
    consumer.close(autocommit=False)

    again = clients.consumer(group)
    subscribe(again, topic)
    deadline = time.monotonic() + 30
    replayed = []
    while len(again.assignment()) < PARTITIONS and time.monotonic() < deadline:
        replayed += poll_records(again, 1, timeout_s=0.2)
    assert again.assignment() == set(ends)
    replayed += poll_records(again, 1, timeout_s=2)
    assert replayed == []
    assert {p: again.position(p) for p in ends} == ends
    produce(producer, topic, 10, "second")
    fresh = poll_records(again, 10)
    assert sorted(r.value for r in fresh) == sorted(f"second-{i}".encode() for i in range(10))

    # The predictor's replay after a failed batch: seek back on a partition of the group's assignment.
    rewound = max(ends, key=ends.get)
    end = again.end_offsets([rewound])[rewound]
    again.seek(rewound, 0)
    replay = poll_records(again, end)
    assert [(r.partition, r.offset) for r in replay] == [(rewound.partition, offset) for offset in range(end)]
    assert again.position(rewound) == end


def test_assign_seek_position_end_offsets(clients, topic):
    sent = produce(clients.producer(), topic, 60, "old")
    counts = {TopicPartition(topic, p): sum(m.partition == p for m in sent) for p in range(PARTITIONS)}
    consumer = clients.consumer(None)
    assert consumer.partitions_for_topic(topic) == set(range(PARTITIONS))
    assert not consumer.partitions_for_topic(f"missing-{uuid.uuid4().hex[:8]}")
    partitions = sorted(counts)
    consumer.assign(partitions)
    assert consumer.assignment() == set(partitions)
    assert consumer.end_offsets(partitions) == counts

    consumer.seek_to_end(*partitions)
    assert {p: consumer.position(p) for p in partitions} == counts
    consumer.seek_to_beginning()
    assert {p: consumer.position(p) for p in partitions} == dict.fromkeys(partitions, 0)
    assert len(poll_records(consumer, 60)) == 60
    assert {p: consumer.position(p) for p in partitions} == counts

    busiest = max(partitions, key=counts.get)
    consumer.seek(busiest, counts[busiest] - 3)
    replay = poll_records(consumer, 3)
    assert [(r.partition, r.offset) for r in replay] == [(busiest.partition, counts[busiest] - i) for i in (3, 2, 1)]
    assert consumer.position(busiest) == counts[busiest]
    with pytest.raises(IllegalStateError):
        consumer.commit({busiest: OffsetAndMetadata(1, "", -1)})
    with pytest.raises(IllegalStateError):
        consumer.position(TopicPartition(f"other-{topic}", 0))


def test_groupless_consumer_from_end_sees_only_new_records(clients, topic):
    producer = clients.producer()
    produce(producer, topic, 50, "old")
    consumer = clients.consumer(None, fetch_max_wait_ms=10)
    assign_from_end(consumer, topic)
    produce(producer, topic, 20, "new")
    records = poll_records(consumer, 20)
    records += poll_records(consumer, 1, timeout_s=1)
    assert sorted(r.value for r in records) == sorted(f"new-{i}".encode() for i in range(20))


def test_send_errors_are_kafka_python_errors(clients, topic):
    producer = clients.producer(max_block_ms=2000)
    with pytest.raises(MessageSizeTooLargeError):
        producer.send(topic, value=b"x" * 2_000_000).get(timeout=10)
    with pytest.raises(KafkaTimeoutError):  # auto creation is off: the topic never appears
        producer.send(f"missing-{uuid.uuid4().hex[:8]}", value=b"lost")
        producer.flush(timeout=2)
    producer.close(timeout=1)  # gives up on the record still queued (confluent), as kafka-python does


def test_options_translation_refuses_unknown_names():
    config = KafkaSettings(bootstrap_servers=BOOTSTRAP).client_config()
    consumer = create_confluent_consumer(config, group_id=None, bootstrap_timeout_ms=5000, consumer_timeout_ms=100)
    assert isinstance(consumer, ConfluentConsumer)
    consumer.close()
    with pytest.raises(TypeError, match="max_partition_fetch_byte"):
        create_confluent_consumer(config, max_partition_fetch_byte=1)
