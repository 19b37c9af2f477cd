"""The interface of `interface.py` on confluent-kafka (librdkafka: batching and network I/O in C threads).

librdkafka's own quirks stay in here: delivery reports that run only inside poll()/flush(), a
group.id it always wants, seeks that fail on a partition whose fetcher is still starting, and
client-wide errors reported to a callback instead of raised.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import confluent_kafka as ck
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from utils.kafka.interface import (
    Acknowledgement,
    AclRule,
    AuthenticationFailed,
    AuthorizationFailed,
    BrokerUnavailable,
    CommitFailed,
    Consumer,
    ConsumerOptions,
    DeliveryFailed,
    FatalKafkaError,
    InvalidUsage,
    KafkaError,
    KafkaTimeout,
    Partition,
    ProducerFenced,
    ProducerOptions,
    Record,
    RecordTooLarge,
    RefusedDelivery,
    RevokeCallback,
    TopicSpec,
    TransactionAborted,
    TransactionInDoubt,
    UnknownTopic,
)
from utils.kafka.reading import wait_until_known
from utils.settings import KafkaSettings

log = logging.getLogger(__name__)
# librdkafka's log lines and client-wide errors go under "kafka", where BrokerHealth listens for
# kafka-python's too: an outage is reported the same way with either library.
rdkafka_log = logging.getLogger("kafka.librdkafka")
# Its FAIL lines (every ~50 ms while a broker is down) repeat what error_cb reports, rate-limited, below.
rdkafka_log.addFilter(lambda record: not (isinstance(record.args, tuple) and record.args[:1] == ("FAIL",)))
LOG_EVERY_S = 5.0  # one line per kind of client error; BrokerHealth deems the broker down until 10 s without
REQUEST_TIMEOUT_S = 30.0  # metadata and offset look-ups
PREFETCH_KBYTES = 16 * 1024  # what a consumer reads ahead of its poll() calls, at most
E = ck.KafkaError
# Offset look-ups that fail while a broker starts or a leader moves; asked again (ConfluentConsumer).
LEADERSHIP_MOVING = {E.NOT_LEADER_FOR_PARTITION, E.LEADER_NOT_AVAILABLE, E._DESTROY_BROKER, E._TRANSPORT}

TRANSLATIONS: dict[int, type[KafkaError]] = {
    E._AUTHENTICATION: AuthenticationFailed,
    E.SASL_AUTHENTICATION_FAILED: AuthenticationFailed,
    E._SSL: AuthenticationFailed,
    E.TOPIC_AUTHORIZATION_FAILED: AuthorizationFailed,
    E.GROUP_AUTHORIZATION_FAILED: AuthorizationFailed,
    E.CLUSTER_AUTHORIZATION_FAILED: AuthorizationFailed,
    E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: AuthorizationFailed,
    E.MSG_SIZE_TOO_LARGE: RecordTooLarge,
    E._TIMED_OUT: KafkaTimeout,
    E._MSG_TIMED_OUT: DeliveryFailed,
    E._TRANSPORT: BrokerUnavailable,
    E._ALL_BROKERS_DOWN: BrokerUnavailable,
    E._STATE: InvalidUsage,
    E._UNKNOWN_TOPIC: UnknownTopic,
    E._UNKNOWN_PARTITION: UnknownTopic,
    E.UNKNOWN_TOPIC_OR_PART: UnknownTopic,
    E.REBALANCE_IN_PROGRESS: CommitFailed,
    E.ILLEGAL_GENERATION: CommitFailed,
    E.UNKNOWN_MEMBER_ID: CommitFailed,
    E._ASSIGNMENT_LOST: CommitFailed,
    E._FENCED: ProducerFenced,
    E.PRODUCER_FENCED: ProducerFenced,
    E.INVALID_PRODUCER_EPOCH: ProducerFenced,
}
# Retrying cannot fix these: the next call raises them instead of librdkafka retrying forever.
FATAL_CODES = {
    code for code, kind in TRANSLATIONS.items() if kind in (AuthenticationFailed, AuthorizationFailed, ProducerFenced)
}


def translate(error: ck.KafkaError) -> KafkaError:
    return TRANSLATIONS.get(error.code(), KafkaError)(f"{error.name()}: {error.str()}")


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except ck.KafkaException as exc:
        raise translate(exc.args[0]) from exc
    except SystemError as exc:
        # A fatal error raised while librdkafka runs our delivery callback (inside flush or poll)
        # reaches Python as a SystemError caused by the KafkaException.
        if isinstance(exc.__cause__, ck.KafkaException):
            raise translate(exc.__cause__.args[0]) from exc
        raise


def _poll(producer: ck.Producer, timeout_s: float) -> None:
    """producer.poll, with a fatal error raised in a delivery callback translated (see _translated);
    a plain function, not the context manager: it runs once per record sent."""
    try:
        producer.poll(timeout_s)
    except SystemError as exc:
        if isinstance(exc.__cause__, ck.KafkaException):
            raise translate(exc.__cause__.args[0]) from exc
        raise


# librdkafka's requests to a group coordinator (send_offsets_to_transaction's) can outlive the
# timeout they are given, silently and for minutes (confluentinc/librdkafka#5456; #5511: a
# coordinator gone from the metadata stays cached, seen here when a node of three is killed under
# load). Such a call runs on a helper thread (~0.1 ms a call), and is given up this long after its
# own timeout. The transaction coordinator's calls (commit, abort) keep to their timeouts.
OUTLIVED_AFTER_S = 10.0


class _Outlived(KafkaTimeout):
    """A librdkafka call that had not returned OUTLIVED_AFTER_S after its own timeout."""


_Call = tuple[Callable[[], object], threading.Event, list[BaseException]]  # a call, its end, what it raised


class _CallThread:
    """Runs a producer's blocking calls on a thread of its own, so that the caller can give up one
    that outlives its timeout. A call given up keeps its thread, and the producer it was called on
    (referenced by the call), until librdkafka returns, if ever; its caller replaces the producer."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[_Call | None]
        self._thread: threading.Thread | None = None

    def run(self, call: Callable[[], object], timeout_s: float) -> None:
        """call(), which is given `timeout_s`; raises what it raises, or _Outlived."""
        if self._thread is None:
            self._calls = queue.SimpleQueue()
            self._thread = threading.Thread(
                target=_serve_calls, args=(self._calls,), name="librdkafka-calls", daemon=True
            )
            self._thread.start()
        done, raised = threading.Event(), list[BaseException]()
        self._calls.put((call, done, raised))
        waited_s = timeout_s + OUTLIVED_AFTER_S
        if not done.wait(waited_s):
            self._calls.put(None)  # the stuck thread ends once librdkafka lets it go
            self._thread = None
            raise _Outlived(f"no answer {waited_s:.0f}s into a call given {timeout_s:.0f}s")
        if raised:
            raise raised[0]

    def close(self) -> None:
        if self._thread is not None:
            self._calls.put(None)
            self._thread = None


def _serve_calls(calls: queue.SimpleQueue[_Call | None]) -> None:
    while (item := calls.get()) is not None:
        call, done, raised = item
        try:
            call()
        except BaseException as exc:  # noqa: BLE001  (handed to the caller's thread, which raises it)
            raised.append(exc)
        done.set()


def client_config(settings: KafkaSettings, client_id: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": client_id,
        "security.protocol": settings.security_protocol,
        "reconnect.backoff.max.ms": 2000,
        "logger": rdkafka_log,
    }
    optional = {
        "sasl.mechanism": settings.sasl_mechanism,
        "sasl.username": settings.sasl_username,
        "sasl.password": settings.sasl_password,
        "ssl.ca.location": settings.ssl_cafile,
        "ssl.certificate.location": settings.ssl_certfile,
        "ssl.key.location": settings.ssl_keyfile,
    }
    config.update({key: value for key, value in optional.items() if value})
    return config


class _ErrorWatch:
    """librdkafka retries connection problems itself and reports them to error_cb: log them at ERROR
    (rate-limited), and keep the ones retrying cannot fix for the next call to raise."""

    def __init__(self, fatal_codes: set[int]) -> None:
        self.fatal: KafkaError | None = None
        self.fatal_codes = fatal_codes
        self._logged_at: dict[int, float] = {}

    def __call__(self, error: ck.KafkaError) -> None:
        if time.monotonic() - self._logged_at.get(error.code(), -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged_at[error.code()] = time.monotonic()
            rdkafka_log.error("librdkafka error %s: %s", error.name(), error.str())
        if (error.fatal() or error.code() in self.fatal_codes) and self.fatal is None:
            self.fatal = translate(error)

    def check(self) -> None:
        if self.fatal is not None:
            raise self.fatal


class _Delivery:
    """Resolved by librdkafka's delivery report, which only runs inside Producer.poll()/flush(): so
    result() polls the producer while it waits. Kept minimal: one is made per record."""

    __slots__ = ("_producer", "_error", "_message", "is_done")

    def __init__(self, producer: ck.Producer) -> None:
        self._producer = producer
        self._error: ck.KafkaError | None = None
        self._message: ck.Message | None = None
        self.is_done = False

    def report(self, error: ck.KafkaError | None, message: ck.Message) -> None:
        self._error, self._message, self.is_done = error, message, True

    def done(self) -> bool:
        if not self.is_done:
            _poll(self._producer, 0)  # serve waiting delivery reports: the loop asks instead of flushing
        return self.is_done

    def result(self, timeout_s: float | None = None) -> Acknowledgement:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.is_done:
            _poll(self._producer, 0.1 if deadline is None else min(0.1, max(0.0, deadline - time.monotonic())))
            if not self.is_done and deadline is not None and time.monotonic() >= deadline:
                raise KafkaTimeout(f"no acknowledgement after {timeout_s}s")
        if self._error is not None:
            error = translate(self._error)
            raise error if isinstance(error, DeliveryFailed) else DeliveryFailed(str(error))
        message = self._message
        assert message is not None
        return Acknowledgement(str(message.topic()), int(message.partition() or 0), int(message.offset() or 0))


class ConfluentProducer:
    def __init__(self, settings: KafkaSettings, options: ProducerOptions) -> None:
        config = client_config(settings, options.client_id) | {
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": options.linger_ms,
        }
        if options.batch_bytes is not None:
            config["batch.size"] = options.batch_bytes
        if options.transactional_id is not None:
            config["transactional.id"] = options.transactional_id
            config["transaction.timeout.ms"] = options.transaction_timeout_ms
        self._max_block_s = options.max_block_ms / 1000
        self._config = config
        self._errors = _ErrorWatch(FATAL_CODES)
        with _translated():
            self._producer = ck.Producer(config | {"error_cb": self._errors})
        self._closed = False

    def send(
        self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None
    ) -> _Delivery | RefusedDelivery:
        self._start_again_if_given_up()
        self._errors.check()
        delivery = _Delivery(self._producer)
        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        deadline = time.monotonic() + self._max_block_s
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=delivery.report, **extra)
                break
            except ck.KafkaException as exc:
                error = translate(exc.args[0])
                if isinstance(error, RecordTooLarge):
                    return RefusedDelivery(error)
                raise error from exc
            except BufferError:  # queue full: wait up to max_block_ms for room
                if time.monotonic() > deadline:
                    raise KafkaTimeout(f"producer queue still full after {self._max_block_s}s") from None
                _poll(self._producer, 0.05)
        _poll(self._producer, 0)  # serve the delivery reports of earlier records
        return delivery

    def _start_again_if_given_up(self) -> None:
        """librdkafka gives an idempotent producer up for good on some errors that neither fence nor
        refuse it (e.g. OUT_OF_ORDER_SEQUENCE_NUMBER after a leader failover): what it had not
        delivered has failed (the loop sends it again), and a new producer takes over."""
        given_up = self._errors.fatal
        if given_up is not None and not isinstance(given_up, FatalKafkaError):
            self._start_again(str(given_up))

    def _start_again(self, reason: str) -> None:
        log.warning("producer failed, starting a new one reason=%s", reason[:300])
        try:
            self._producer.purge()
            self._producer.poll(0)  # what was purged fails now, not never
        except (ck.KafkaException, SystemError):
            pass  # a failed producer may refuse even that: it is dropped anyway
        self._errors = _ErrorWatch(FATAL_CODES)
        with _translated():
            self._producer = ck.Producer(self._config | {"error_cb": self._errors})

    def flush(self, timeout_s: float | None = None) -> None:
        with _translated():  # a fenced transactional producer raises here too
            left = self._producer.flush() if timeout_s is None else self._producer.flush(timeout_s)
        self._errors.check()
        if left:
            raise KafkaTimeout(f"{left} records not acknowledged after {timeout_s}s")

    def close(self, timeout_s: float = 10.0) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.flush(timeout_s)
        except KafkaError as error:  # what a forced close drops fails, as on kafka-python
            log.warning("producer closed with unacknowledged records error=%r", error)
            try:
                self._producer.purge()
                self._producer.poll(0)
            except ck.KafkaException as exc:  # e.g. fenced: nothing left to save
                log.warning("producer purge failed error=%r", exc.args[0])


class ConfluentTransactionalProducer(ConfluentProducer):
    """librdkafka's transactions (KIP-98; offsets with the consumer's group metadata, KIP-447)."""

    def __init__(self, settings: KafkaSettings, options: ProducerOptions) -> None:
        if options.transactional_id is None:
            raise InvalidUsage("a transactional producer needs a transactional_id")
        super().__init__(settings, options)
        self._calls = _CallThread()
        self._initialised = False
        self._open = False  # a transaction begun and not yet committed or aborted
        self._initialise()

    def _initialise(self) -> None:
        """Completes or aborts what an earlier producer with this id left open, and fences it."""
        try:
            self._producer.init_transactions(REQUEST_TIMEOUT_S)
        except ck.KafkaException as exc:
            error: ck.KafkaError = exc.args[0]
            if isinstance(translate(error), ProducerFenced) or error.fatal():
                raise ProducerFenced(f"{error.name()}: {error.str()}") from exc
            raise translate(error) from exc  # e.g. its coordinator unreachable: tried again at the next begin
        self._initialised = True

    def _transactional(self, call: Callable[[], object]) -> None:
        try:
            call()
        except ck.KafkaException as exc:
            error: ck.KafkaError = exc.args[0]
            if isinstance(translate(error), ProducerFenced):
                raise ProducerFenced(f"{error.name()}: {error.str()}") from exc
            if error.fatal():
                # Not fenced by another instance, but librdkafka gave this producer up (e.g.
                # INVALID_TXN_STATE after its coordinator failed over mid-abort): a new one with the
                # same id aborts what is open, and the batch is read again.
                self._start_again(error.name())
                raise TransactionAborted(f"transaction aborted, producer started again: {error.name()}") from exc
            raise translate(error) from exc

    def _start_again_if_given_up(self) -> None:
        """Within a transaction the error fails it instead (see begin_transaction)."""

    def _start_again(self, reason: str) -> None:
        """A new producer with the same transactional id, whose initialisation aborts on the
        coordinator whatever the old one left open. If that start fails, the next
        begin_transaction starts yet another."""
        super()._start_again(reason)
        self._initialised = self._open = False
        try:
            self._initialise()
        except ProducerFenced:
            raise
        except KafkaError as error:  # its coordinator still moving
            log.warning("new transactional producer not started yet error=%r", error)

    def begin_transaction(self) -> None:
        super()._start_again_if_given_up()
        self._errors.check()
        if self._open:
            # The last transaction neither committed nor aborted (its abort failed): librdkafka
            # refuses a new one; a new producer aborts it on the coordinator.
            self._start_again("its last transaction is still open")
        elif not self._initialised:
            self._start_again("its start timed out")
        if not self._initialised:
            raise KafkaTimeout("transactional producer not started yet")
        self._transactional(self._producer.begin_transaction)
        self._open = True

    def commit_transaction(self, offsets: Mapping[Partition, int], consumer: Consumer, timeout_s: float = 30.0) -> None:
        targets = [ck.TopicPartition(p.topic, p.partition, offset) for p, offset in offsets.items()]
        committing = False
        try:
            if targets:
                metadata = consumer.group_metadata()
                self._transactional(
                    lambda: self._calls.run(
                        lambda: self._producer.send_offsets_to_transaction(targets, metadata, timeout_s), timeout_s
                    )
                )
            committing = True
            self._transactional(lambda: self._producer.commit_transaction(timeout_s))
            self._open = False
        except ProducerFenced:
            raise
        except KafkaError as error:
            if isinstance(error, KafkaTimeout):
                # A call that timed out may be waiting on a coordinator librdkafka no longer asks
                # again (see OUTLIVED_AFTER_S): the same producer would time out again at every
                # batch. A new one starts afresh, and finishes this transaction on the coordinator.
                self._start_again(f"not committed ({error})")
            elif not isinstance(error, TransactionAborted):
                self.abort_transaction(timeout_s)
            if committing:  # the commit may have reached the coordinator before it failed
                raise TransactionInDoubt(f"transaction ended, committed or aborted: {error}") from error
            if isinstance(error, TransactionAborted):
                raise
            raise TransactionAborted(f"transaction aborted: {error}") from error

    def abort_transaction(self, timeout_s: float = 30.0) -> None:
        """Abort, or (the abort itself failing) start a new producer, which aborts on the coordinator."""
        if not self._open:
            return  # nothing begun, or already ended (a new producer's start aborted it)
        try:
            self._transactional(lambda: self._producer.abort_transaction(timeout_s))
            self._open = False
        except (ProducerFenced, TransactionAborted):
            raise  # TransactionAborted: librdkafka gave the producer up, and a new one took over
        except KafkaError as error:
            self._start_again(f"abort failed ({error})")

    def close(self, timeout_s: float = 10.0) -> None:
        super().close(timeout_s)
        self._calls.close()


def _log_failed_commit(error: ck.KafkaError | None, partitions: list[ck.TopicPartition]) -> None:
    """librdkafka calls this from a later poll with each commit's outcome (a synchronous one also
    raises its failure; an asynchronous one has only this)."""
    failed = [p for p in partitions if p.error is not None]
    if error is not None or failed:
        log.warning(
            "offset commit failed partitions=%s error=%r", len(failed) or len(partitions), error or failed[0].error
        )


class ConfluentConsumer:
    def __init__(self, settings: KafkaSettings, options: ConsumerOptions) -> None:
        self._max_poll_records = options.max_poll_records
        self._group_id = options.group_id
        self._earliest = options.read_from_start
        config = client_config(settings, options.client_id) | {
            "group.id": options.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest" if options.read_from_start else "latest",
            "session.timeout.ms": options.session_timeout_ms,
            "heartbeat.interval.ms": options.heartbeat_interval_ms,
            "max.poll.interval.ms": options.max_poll_interval_ms,
            "fetch.wait.max.ms": options.fetch_max_wait_ms,
            # librdkafka prefetches up to 64 MiB by default: under a backlog a predictor's memory grew
            # by that much (+15% over 1,000,000 requests). 16 MiB is still seconds of traffic here.
            "queued.max.messages.kbytes": PREFETCH_KBYTES,
            "enable.partition.eof": False,
            "isolation.level": "read_committed" if options.read_committed else "read_uncommitted",
        }
        if options.group_id is None:  # librdkafka requires a group.id: a private one, never joined nor committed
            config["group.id"] = f"no-group-{uuid.uuid4().hex}"
        # The private group is never used: refusing it (group ACLs) must not stop a group-less consumer.
        fatal = FATAL_CODES - ({E.GROUP_AUTHORIZATION_FAILED} if options.group_id is None else set())
        self._errors = _ErrorWatch(fatal)
        with _translated():
            self._consumer = ck.Consumer(config | {"error_cb": self._errors, "on_commit": _log_failed_commit})
        # Next offset of each partition: librdkafka's position() knows neither seeks nor unread partitions.
        self._positions: dict[Partition, int] = {}
        self._manual: set[Partition] | None = None  # assign()ed partitions; None: subscribed
        self._handed_over = False
        self._closed = False

    def poll(self, timeout_s: float, max_records: int | None = None) -> list[Record]:
        self._errors.check()
        if self._manual is not None and not self._handed_over:
            self._hand_over()
        limit = max_records or self._max_poll_records
        with _translated():
            # consume(n, t) waits for n messages or t; the contract returns as soon as there are records.
            messages = self._consumer.consume(1, timeout_s)
            if messages and limit > 1:
                messages += self._consumer.consume(limit - 1, 0)
        self._errors.check()
        records = []
        for message in messages:
            error = message.error()
            if error is None:
                topic, number, offset = str(message.topic()), int(message.partition() or 0), int(message.offset() or 0)
                records.append(Record(topic, number, offset, message.key(), message.value()))
            elif error.fatal() or error.code() in self._errors.fatal_codes:
                raise translate(error)
            else:
                log.warning("consumer error skipped topic=%s error=%s", message.topic(), error.str())
        for record in records:
            self._positions[Partition(record.topic, record.partition)] = record.offset + 1
        return records

    def subscribe(self, topic: str, timeout_s: float = 30.0, on_revoke: RevokeCallback | None = None) -> None:
        if self._group_id is None:
            raise InvalidUsage("subscribe() needs a group id")
        wait_until_known(self.partitions_for, topic, timeout_s)
        self._manual = None

        def revoked(consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
            offsets = on_revoke({Partition(p.topic, p.partition) for p in partitions}) if on_revoke else {}
            try:
                self.commit(offsets)  # librdkafka allows a synchronous commit inside its callback
            except KafkaError as error:
                log.warning("commit before a rebalance failed, the next owner may read again error=%r", error)
            self._forget(consumer, partitions)

        with _translated():
            self._consumer.subscribe([topic], on_assign=self._forget, on_revoke=revoked, on_lost=self._forget)

    def _forget(self, consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        for p in partitions:  # a rebalance moved them: they start again from the committed offset
            self._positions.pop(Partition(p.topic, p.partition), None)

    def assign(self, partitions: Iterable[Partition]) -> None:
        """Handed to librdkafka at the next poll(), with every start offset resolved: a seek() right after
        librdkafka's assign() fails, or loses to the offset look-up of the partition it just started."""
        self._manual = {Partition(p.topic, p.partition) for p in partitions}
        self._positions.clear()
        self._handed_over = False

    def _hand_over(self) -> None:
        assert self._manual is not None
        targets = [ck.TopicPartition(p.topic, p.partition, self.position(p)) for p in self._manual]
        with _translated():
            self._consumer.assign(targets)
        self._handed_over = True

    def assignment(self) -> set[Partition]:
        if self._manual is not None:
            return set(self._manual)
        with _translated():
            return {Partition(p.topic, p.partition) for p in self._consumer.assignment()}

    def partitions_for(self, topic: str) -> set[int]:
        with _translated():
            metadata = self._consumer.list_topics(topic, timeout=REQUEST_TIMEOUT_S).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return set()
        return set(metadata.partitions)

    def seek(self, partition: Partition, offset: int) -> None:
        partition = self._assigned(partition)
        if self._manual is None or self._handed_over:
            deadline = time.monotonic() + REQUEST_TIMEOUT_S
            while True:
                try:
                    self._consumer.seek(ck.TopicPartition(partition.topic, partition.partition, offset))
                    break
                except ck.KafkaException as exc:  # _STATE: the fetcher of a just-assigned partition is starting
                    if exc.args[0].code() != E._STATE or time.monotonic() > deadline:
                        raise translate(exc.args[0]) from exc
                    time.sleep(0.01)
        self._positions[partition] = offset

    def seek_to_beginning(self, partitions: Iterable[Partition]) -> None:
        for partition in partitions:
            self.seek(partition, self._watermarks(partition)[0])

    def seek_to_end(self, partitions: Iterable[Partition]) -> None:
        for partition in partitions:
            self.seek(partition, self._watermarks(partition)[1])

    def position(self, partition: Partition) -> int:
        partition = self._assigned(partition)
        if partition not in self._positions:  # where librdkafka starts too: committed offset, else the reset policy
            offset = self.committed(partition) if self._group_id else None
            if offset is None:
                offset = self._watermarks(partition)[0 if self._earliest else 1]
            self._positions[partition] = offset
        return self._positions[partition]

    def _assigned(self, partition: Partition) -> Partition:
        partition = Partition(partition.topic, partition.partition)
        if partition not in self.assignment():
            raise InvalidUsage(f"partition {partition} is not assigned")
        return partition

    def end_offsets(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        return {Partition(p.topic, p.partition): self._watermarks(p)[1] for p in partitions}

    def _watermarks(self, partition: Partition) -> tuple[int, int]:
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        try:
            with _translated():
                while True:
                    try:
                        found = self._consumer.get_watermark_offsets(
                            ck.TopicPartition(partition.topic, partition.partition),
                            timeout=REQUEST_TIMEOUT_S,
                            cached=False,
                        )
                        break
                    except ck.KafkaException as exc:
                        # A broker just started (or a leader just moved): asked again, as librdkafka's
                        # own requests are, until the look-up's time is up.
                        if exc.args[0].code() not in LEADERSHIP_MOVING or time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)
        except UnknownTopic:
            self._raise_if_denied(partition.topic)
            raise
        if found is None:
            raise KafkaTimeout(f"no offsets for {partition} after {REQUEST_TIMEOUT_S}s")
        return int(found[0]), int(found[1])

    def _raise_if_denied(self, topic: str) -> None:
        """librdkafka reports a topic it may not describe as unknown: say which it is."""
        with _translated():
            metadata = self._consumer.list_topics(topic, timeout=REQUEST_TIMEOUT_S).topics.get(topic)
        if metadata is not None and metadata.error is not None and metadata.error.code() in FATAL_CODES:
            raise translate(metadata.error)

    def committed(self, partition: Partition) -> int | None:
        if self._group_id is None:
            raise InvalidUsage("committed() needs a group id")
        with _translated():
            [found] = self._consumer.committed(
                [ck.TopicPartition(partition.topic, partition.partition)], REQUEST_TIMEOUT_S
            )
        if found.error is not None:
            raise translate(found.error)
        return found.offset if found.offset >= 0 else None

    def commit(self, offsets: Mapping[Partition, int]) -> None:
        if self._group_id is None:
            raise InvalidUsage("commit() needs a group id")
        targets = [ck.TopicPartition(p.topic, p.partition, offset) for p, offset in offsets.items()]
        if not targets:
            return
        try:
            results = self._consumer.commit(offsets=targets, asynchronous=False)
        except ck.KafkaException as exc:
            error = translate(exc.args[0])
            raise (
                error
                if isinstance(error, CommitFailed | KafkaTimeout | BrokerUnavailable)
                else CommitFailed(str(error))
            ) from exc
        for result in results or []:
            if result.error is not None:
                raise CommitFailed(str(translate(result.error)))

    def commit_async(self, offsets: Mapping[Partition, int]) -> None:
        if self._group_id is None:
            raise InvalidUsage("commit_async() needs a group id")
        targets = [ck.TopicPartition(p.topic, p.partition, offset) for p, offset in offsets.items()]
        if not targets:
            return
        with _translated():
            self._consumer.commit(offsets=targets, asynchronous=True)  # its outcome: _log_failed_commit

    def group_metadata(self) -> object:
        return self._consumer.consumer_group_metadata()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with _translated():
                self._consumer.close()


class ConfluentAdmin:
    def __init__(self, settings: KafkaSettings, client_id: str, bootstrap_timeout_s: float = 5.0) -> None:
        self._errors = _ErrorWatch(FATAL_CODES)
        self._bootstrap_timeout_s = bootstrap_timeout_s
        with _translated():
            self._admin = AdminClient(client_config(settings, client_id) | {"error_cb": self._errors})

    def list_topics(self) -> set[str]:
        with _translated():
            try:
                return set(self._admin.list_topics(timeout=self._bootstrap_timeout_s).topics)
            except ck.KafkaException:
                self._admin.poll(0.5)  # serves error_cb, which knows a refused login from a down broker
                self._errors.check()
                raise

    def brokers(self) -> set[int]:
        with _translated():
            return set(self._admin.list_topics(timeout=self._bootstrap_timeout_s).brokers)

    def replication_factors(self, names: Collection[str]) -> dict[str, int]:
        with _translated():
            topics = self._admin.list_topics(timeout=self._bootstrap_timeout_s).topics
        return {
            name: min(len(partition.replicas) for partition in topics[name].partitions.values())
            for name in names
            if name in topics and topics[name].error is None and topics[name].partitions
        }

    def create_acls(self, rules: Sequence[AclRule]) -> None:
        bindings = [
            AclBinding(
                getattr(ResourceType, rule.resource.upper()),
                rule.name,
                ResourcePatternType.LITERAL,
                rule.principal,
                "*",
                getattr(AclOperation, rule.operation.upper()),
                AclPermissionType.ALLOW,
            )
            for rule in rules
        ]
        for future in self._admin.create_acls(bindings, request_timeout=REQUEST_TIMEOUT_S).values():
            with _translated():
                future.result(timeout=REQUEST_TIMEOUT_S)

    def create_topics(self, specs: Sequence[TopicSpec], timeout_s: float = 30.0) -> list[str]:
        # librdkafka connects in the background: a first metadata call tells a down broker (or a
        # refused login) from a slow one within the bootstrap timeout.
        existing = self.list_topics()
        self._errors.check()
        new = [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=spec.replication_factor or -1,
                config=dict(spec.configs),
            )
            for spec in specs
            if spec.name not in existing
        ]
        if not new:
            return []
        created = []
        futures = self._admin.create_topics(new, operation_timeout=timeout_s, request_timeout=timeout_s)
        for name, future in futures.items():
            try:
                future.result(timeout=timeout_s)
                created.append(name)
            except ck.KafkaException as exc:
                if exc.args[0].code() != E.TOPIC_ALREADY_EXISTS:
                    raise translate(exc.args[0]) from exc
        self._wait_for_metadata(created, timeout_s)
        return created

    def _wait_for_metadata(self, names: list[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while names and time.monotonic() < deadline:
            with _translated():
                topics = self._admin.list_topics(timeout=timeout_s).topics
            if all(name in topics and topics[name].error is None for name in names):
                return
            time.sleep(0.1)

    def close(self) -> None:
        """AdminClient has no close(); it is released with the object."""
