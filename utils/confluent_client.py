"""Producer and consumer on confluent-kafka (librdkafka) with the part of kafka-python's interface the
project uses (utils/kafka_io.py, the predictor, the sample app, the benchmarks).

Why: librdkafka batches and does its network I/O in C threads; this lets a service switch library without
changing its code. Results come back as kafka-python types (TopicPartition, ConsumerRecord, RecordMetadata)
and failures as kafka.errors classes, so is_fatal(), flush_or_wait() and `except KafkaError` keep working.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import confluent_kafka as ck
from kafka import TopicPartition
from kafka import errors as Errors
from kafka.consumer.fetcher import ConsumerRecord
from kafka.producer.future import RecordMetadata
from kafka.structs import OffsetAndMetadata

log = logging.getLogger(__name__)
# librdkafka's log lines and client-wide errors go under "kafka", where kafka_io's BrokerHealth and
# AuthFailureWatcher listen for kafka-python's: an outage is reported the same way with either library.
rdkafka_log = logging.getLogger("kafka.librdkafka")
# Its FAIL lines (every ~50 ms while a broker is down) repeat what error_cb reports, rate-limited, below.
rdkafka_log.addFilter(lambda record: not (isinstance(record.args, tuple) and record.args[:1] == ("FAIL",)))
LOG_EVERY_S = 5.0  # one line per kind of client error; BrokerHealth deems the broker down until 10 s without
REQUEST_TIMEOUT_S = 30.0  # metadata and offset look-ups, like kafka-python's request_timeout_ms
E = ck.KafkaError

# kafka-python option -> librdkafka property.
CLIENT_OPTIONS = {
    "bootstrap_servers": "bootstrap.servers",
    "client_id": "client.id",
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "reconnect_backoff_max_ms": "reconnect.backoff.max.ms",
}
PRODUCER_OPTIONS = CLIENT_OPTIONS | {
    "acks": "acks",
    "enable_idempotence": "enable.idempotence",
    "linger_ms": "linger.ms",
    "batch_size": "batch.size",  # both: bytes of one partition's batch (defaults 16 KiB vs 1 MB)
    "delivery_timeout_ms": "message.timeout.ms",
}
CONSUMER_OPTIONS = CLIENT_OPTIONS | {
    "group_id": "group.id",
    "enable_auto_commit": "enable.auto.commit",
    "auto_offset_reset": "auto.offset.reset",
    "session_timeout_ms": "session.timeout.ms",
    "heartbeat_interval_ms": "heartbeat.interval.ms",
    "max_poll_interval_ms": "max.poll.interval.ms",
    "fetch_max_wait_ms": "fetch.wait.max.ms",
}
# Done by the adapter itself (defaults as kafka-python's): poll()'s batch size, send()'s wait on a full queue.
ADAPTER_OPTIONS = {"max_poll_records": 500, "max_block_ms": 60000}
# No librdkafka equivalent: bootstrap_timeout_ms (kafka-python's constructor waits for the cluster,
# librdkafka connects in the background); consumer_timeout_ms (iteration, which this adapter does not offer).
IGNORED_OPTIONS = {"bootstrap_timeout_ms", "consumer_timeout_ms"}

LOCAL_ERRORS = {  # librdkafka's own (negative) codes; the broker's codes map through kafka.errors.for_code
    E._AUTHENTICATION: Errors.SaslAuthenticationFailedError,
    E._TIMED_OUT: Errors.KafkaTimeoutError,
    E._MSG_TIMED_OUT: Errors.KafkaTimeoutError,
    E._TRANSPORT: Errors.KafkaConnectionError,
    E._ALL_BROKERS_DOWN: Errors.KafkaConnectionError,
    E._STATE: Errors.IllegalStateError,
    E._UNKNOWN_TOPIC: Errors.UnknownTopicOrPartitionError,
    E._UNKNOWN_PARTITION: Errors.UnknownTopicOrPartitionError,
}
# Retrying cannot fix these: the next call raises them instead of librdkafka retrying forever.
FATAL_CODES = {E._AUTHENTICATION, E.SASL_AUTHENTICATION_FAILED, E.TOPIC_AUTHORIZATION_FAILED}
FATAL_CODES |= {E.GROUP_AUTHORIZATION_FAILED, E.CLUSTER_AUTHORIZATION_FAILED}
COMMIT_FAILED_CODES = {E.REBALANCE_IN_PROGRESS, E.ILLEGAL_GENERATION, E.UNKNOWN_MEMBER_ID, E._ASSIGNMENT_LOST}


def to_kafka_error(error: ck.KafkaError, commit: bool = False) -> Errors.KafkaError:
    code = error.code()
    kind = Errors.for_code(code) if code > 0 else LOCAL_ERRORS.get(code, Errors.KafkaError)
    kind = Errors.CommitFailedError if commit and code in COMMIT_FAILED_CODES else kind
    return kind(f"{error.name()}: {error.str()}")


@contextmanager
def _kafka_errors() -> Iterator[None]:
    try:
        yield
    except ck.KafkaException as exc:
        raise to_kafka_error(exc.args[0]) from exc


def _translate(options: dict, table: dict[str, str]) -> tuple[dict, dict]:
    """(librdkafka config, adapter settings). Unknown names raise: a typo must not be dropped silently."""
    config: dict = {"logger": rdkafka_log}
    adapter = dict(ADAPTER_OPTIONS)
    for name, value in options.items():
        if name in table and value is not None:
            config[table[name]] = ",".join(value) if isinstance(value, list | tuple) else value
        elif name in adapter:
            adapter[name] = value
        elif name in IGNORED_OPTIONS:
            log.debug("option without librdkafka equivalent ignored option=%s", name)
        elif name not in table:
            raise TypeError(f"option {name!r} is not supported by the confluent-kafka client")
    return config, adapter


class _ErrorWatch:
    """librdkafka retries connection problems itself and reports them to error_cb (kafka-python logs
    them): log them at ERROR, and keep the ones retrying cannot fix for the next call to raise."""

    def __init__(self, fatal_codes: set[int]) -> None:
        self.fatal: Errors.KafkaError | None = None
        self.fatal_codes = fatal_codes
        self._logged_at: dict[int, float] = {}

    def __call__(self, error: ck.KafkaError) -> None:
        if time.monotonic() - self._logged_at.get(error.code(), -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged_at[error.code()] = time.monotonic()
            rdkafka_log.error("librdkafka error %s: %s", error.name(), error.str())
        if (error.fatal() or error.code() in self.fatal_codes) and self.fatal is None:
            self.fatal = to_kafka_error(error)

    def check(self) -> None:
        if self.fatal is not None:
            raise self.fatal


def _size(data: bytes | None) -> int:
    return -1 if data is None else len(data)


class DeliveryFuture:
    """kafka-python's FutureRecordMetadata, resolved by librdkafka's delivery report. Reports only
    run inside Producer.poll()/flush(), so get() polls the producer while it waits. Kept minimal (no
    Event, result built in get()): one is made per record, and this is the producer's hot path."""

    __slots__ = ("_producer", "_error", "_message", "is_done")

    def __init__(self, producer: ck.Producer) -> None:
        self._producer, self._error, self._message, self.is_done = producer, None, None, False

    def _report(self, error: ck.KafkaError | None, message: ck.Message) -> None:
        self._error, self._message, self.is_done = error, message, True

    def get(self, timeout: float | None = None) -> RecordMetadata:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_done:
            self._producer.poll(0.1 if deadline is None else min(0.1, max(0.0, deadline - time.monotonic())))
            if not self.is_done and deadline is not None and time.monotonic() >= deadline:
                raise Errors.KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")
        if self._error is not None:
            raise to_kafka_error(self._error)
        msg = self._message
        tp = TopicPartition(msg.topic(), msg.partition())
        return RecordMetadata(*tp, tp, msg.offset(), msg.timestamp()[1], None, _size(msg.key()), _size(msg.value()), -1)


class ConfluentProducer:
    def __init__(self, **options) -> None:
        config, adapter = _translate(options, PRODUCER_OPTIONS)
        self._max_block_s = adapter["max_block_ms"] / 1000
        self._errors = _ErrorWatch(FATAL_CODES)
        self._producer = ck.Producer(config | {"error_cb": self._errors})
        self._closed = False

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None, *, partition: int | None = None):
        self._errors.check()
        future = DeliveryFuture(self._producer)
        extra = {} if partition is None else {"partition": partition}
        deadline = time.monotonic() + self._max_block_s
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=future._report, **extra)
                break
            except ck.KafkaException as exc:
                raise to_kafka_error(exc.args[0]) from exc
            except BufferError:  # queue full: wait up to max_block_ms, like kafka-python on a full buffer
                if time.monotonic() > deadline:
                    raise Errors.KafkaTimeoutError(f"producer queue still full after {self._max_block_s}s") from None
                self._producer.poll(0.05)
        self._producer.poll(0)  # serve the delivery reports of earlier records
        return future

    def flush(self, timeout: float | None = None) -> None:
        left = self._producer.flush() if timeout is None else self._producer.flush(timeout)
        self._errors.check()
        if left:
            raise Errors.KafkaTimeoutError(f"{left} records not acknowledged after {timeout}s")

    def close(self, timeout: float | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.flush(timeout)
        except Errors.KafkaError as error:  # kafka-python fails what a forced close drops: so does purge
            log.warning("producer closed with unacknowledged records error=%r", error)
            self._producer.purge()
            self._producer.poll(0)
        self._producer.close()


def _record(msg: ck.Message) -> ConsumerRecord:
    kind, timestamp = msg.timestamp()
    key, value = msg.key(), msg.value()
    return ConsumerRecord(
        msg.topic(), msg.partition(), msg.leader_epoch(), msg.offset(), timestamp, kind - 1, key, value,
        msg.headers() or [], None, _size(key), _size(value), -1,
    )  # fmt: skip


class ConfluentConsumer:
    def __init__(self, **options) -> None:
        config, adapter = _translate(options, CONSUMER_OPTIONS)
        self._max_poll_records = adapter["max_poll_records"]
        self._group_id: str | None = config.get("group.id")
        self._earliest = config.get("auto.offset.reset") == "earliest"
        if self._group_id is None:  # librdkafka requires a group.id: a private one, never joined nor committed
            config |= {"group.id": f"no-group-{uuid.uuid4().hex}", "enable.auto.commit": False}
        # The private group is never used: refusing it (group ACLs) must not stop a group-less consumer.
        self._errors = _ErrorWatch(FATAL_CODES - ({E.GROUP_AUTHORIZATION_FAILED} if self._group_id is None else set()))
        self._consumer = ck.Consumer(config | {"enable.partition.eof": False, "error_cb": self._errors})
        # Next offset of each partition: librdkafka's position() knows neither seeks nor unread partitions.
        self._positions: dict[TopicPartition, int] = {}
        self._manual: set[TopicPartition] | None = None  # assign()ed partitions; None: subscribed
        self._handed_over = False
        self._closed = False

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[ConsumerRecord]]:
        self._errors.check()
        if self._manual is not None and not self._handed_over:
            self._hand_over()
        limit = max_records or self._max_poll_records
        with _kafka_errors():
            # consume(n, t) waits for n messages or t; kafka-python returns as soon as there are records.
            messages = self._consumer.consume(1, timeout_ms / 1000)
            messages += self._consumer.consume(limit - 1, 0) if messages and limit > 1 else []
        self._errors.check()
        batches: dict[TopicPartition, list[ConsumerRecord]] = {}
        for msg in messages:
            if (error := msg.error()) is None:
                batches.setdefault(TopicPartition(msg.topic(), msg.partition()), []).append(_record(msg))
            elif error.fatal() or error.code() in self._errors.fatal_codes:
                raise to_kafka_error(error)
            else:
                log.warning("consumer error skipped topic=%s error=%s", msg.topic(), error.str())
        self._positions.update({partition: records[-1].offset + 1 for partition, records in batches.items()})
        return batches

    def subscribe(self, topics: list[str]) -> None:
        if self._group_id is None:
            raise Errors.IllegalStateError("subscribe() needs a group_id")
        self._manual = None
        with _kafka_errors():
            self._consumer.subscribe(list(topics), on_assign=self._forget, on_revoke=self._forget, on_lost=self._forget)

    def _forget(self, consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        for p in partitions:  # a rebalance moved them: they start again from the committed offset
            self._positions.pop(TopicPartition(p.topic, p.partition), None)

    def assign(self, partitions: list[TopicPartition]) -> None:
        """Handed to librdkafka at the next poll(), with every start offset resolved: a seek() right after
        librdkafka's assign() fails, or loses to the offset look-up of the partition it just started."""
        self._manual = {TopicPartition(p.topic, p.partition) for p in partitions}
        self._positions.clear()
        self._handed_over = False

    def _hand_over(self) -> None:
        targets = [ck.TopicPartition(p.topic, p.partition, self.position(p)) for p in self._manual]
        with _kafka_errors():
            self._consumer.assign(targets)
        self._handed_over = True

    def assignment(self) -> set[TopicPartition]:
        if self._manual is not None:
            return set(self._manual)
        with _kafka_errors():
            return {TopicPartition(p.topic, p.partition) for p in self._consumer.assignment()}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        partition = self._assigned(partition)
        if self._manual is None or self._handed_over:
            deadline = time.monotonic() + REQUEST_TIMEOUT_S
            while True:
                try:
                    self._consumer.seek(ck.TopicPartition(partition.topic, partition.partition, offset))
                    break
                except ck.KafkaException as exc:  # _STATE: the fetcher of a just-assigned partition is starting
                    if exc.args[0].code() != E._STATE or time.monotonic() > deadline:
                        raise to_kafka_error(exc.args[0]) from exc
                    time.sleep(0.01)
        self._positions[partition] = offset

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for partition in partitions or self.assignment():
            self.seek(partition, self._watermarks(partition)[0])

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        for partition in partitions or self.assignment():
            self.seek(partition, self._watermarks(partition)[1])

    def position(self, partition: TopicPartition) -> int:
        partition = self._assigned(partition)
        if partition not in self._positions:  # where librdkafka starts too: committed offset, else the reset policy
            offset = self.committed(partition) if self._group_id else None
            if offset is None:
                offset = self._watermarks(partition)[0 if self._earliest else 1]
            self._positions[partition] = offset
        return self._positions[partition]

    def _assigned(self, partition: TopicPartition) -> TopicPartition:
        partition = TopicPartition(partition.topic, partition.partition)
        if partition not in self.assignment():
            raise Errors.IllegalStateError(f"Partition {partition} is not assigned")
        return partition

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {TopicPartition(p.topic, p.partition): self._watermarks(p)[1] for p in partitions}

    def _watermarks(self, partition: TopicPartition) -> tuple[int, int]:
        with _kafka_errors():
            found = self._consumer.get_watermark_offsets(
                ck.TopicPartition(partition.topic, partition.partition), timeout=REQUEST_TIMEOUT_S, cached=False
            )
        if found is None:
            raise Errors.KafkaTimeoutError(f"no offsets for {partition} after {REQUEST_TIMEOUT_S}s")
        return found

    def partitions_for_topic(self, topic: str) -> set[int]:
        """Like kafka-python 3: an empty set, not None, for a topic that does not exist."""
        with _kafka_errors():
            metadata = self._consumer.list_topics(topic, timeout=REQUEST_TIMEOUT_S).topics.get(topic)
        return set(metadata.partitions) if metadata is not None else set()

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata] | None = None) -> None:
        self._require_group()
        targets = [
            ck.TopicPartition(p.topic, p.partition, o.offset, o.metadata or "") for p, o in (offsets or {}).items()
        ]
        try:
            if offsets is None:
                results = self._consumer.commit(asynchronous=False)
            else:
                results = self._consumer.commit(offsets=targets, asynchronous=False) if targets else []
        except ck.KafkaException as exc:
            if exc.args[0].code() == E._NO_OFFSET:
                return  # nothing consumed yet: kafka-python commits nothing either
            raise to_kafka_error(exc.args[0], commit=True) from exc
        for result in results:
            if result.error is not None:
                raise to_kafka_error(result.error, commit=True)

    def committed(self, partition: TopicPartition) -> int | None:
        self._require_group()
        with _kafka_errors():
            [found] = self._consumer.committed(
                [ck.TopicPartition(partition.topic, partition.partition)], REQUEST_TIMEOUT_S
            )
        if found.error is not None:
            raise to_kafka_error(found.error)
        return found.offset if found.offset >= 0 else None

    def _require_group(self) -> None:
        if self._group_id is None:
            raise Errors.IllegalStateError("Requires group_id")

    def close(self, autocommit: bool = True) -> None:
        """With enable_auto_commit, librdkafka commits on close whatever `autocommit` says."""
        if not self._closed:
            self._closed = True
            with _kafka_errors():
                self._consumer.close()


def create_confluent_producer(client_config: dict, **options) -> ConfluentProducer:
    """Takes what kafka_io.create_producer gives KafkaProducer: KafkaSettings.client_config() and options."""
    return ConfluentProducer(**{**client_config, **options})


def create_confluent_consumer(client_config: dict, **options) -> ConfluentConsumer:
    """Takes what kafka_io.create_consumer gives KafkaConsumer: KafkaSettings.client_config() and options."""
    return ConfluentConsumer(**{**client_config, **options})
