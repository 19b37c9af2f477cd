"""The interface of `interface.py` on kafka-python (pure Python; the default client)."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import kafka.errors as kerrors
import kafka.net.transport as ktransport
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    NewTopic,
    ResourcePattern,
    ResourceType,
)
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata

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
# A rebalance waits for the commit made before it: bounded well below the group's rebalance timeout.
REVOKE_COMMIT_TIMEOUT_MS = 5000
T = TypeVar("T")

# kafka-python class -> ours; the first match wins, so subclasses come before their bases.
TRANSLATIONS: tuple[tuple[type[Exception], type[KafkaError]], ...] = (
    (kerrors.ProducerFencedError, ProducerFenced),
    (kerrors.InvalidProducerEpochError, ProducerFenced),
    (kerrors.SaslAuthenticationFailedError, AuthenticationFailed),
    (kerrors.UnsupportedSaslMechanismError, AuthenticationFailed),
    (kerrors.IllegalSaslStateError, AuthenticationFailed),
    (kerrors.AuthorizationError, AuthorizationFailed),
    (kerrors.MessageSizeTooLargeError, RecordTooLarge),
    (kerrors.UnknownTopicOrPartitionError, UnknownTopic),
    (kerrors.CommitFailedError, CommitFailed),
    (kerrors.IllegalStateError, InvalidUsage),
    (kerrors.KafkaConnectionError, BrokerUnavailable),
    (kerrors.KafkaTimeoutError, KafkaTimeout),
)


def translate(error: Exception, client_id: str | None = None) -> KafkaError:
    """Our exception for one of kafka-python's (a refused login seen in the client's logs wins)."""
    seen = AUTH_WATCH.failures.get(client_id) if client_id is not None else None
    if seen is not None:
        return seen
    for theirs, ours in TRANSLATIONS:
        if isinstance(error, theirs):
            return ours(str(error))
    return KafkaError(repr(error))


class _AuthWatch(logging.Handler):
    """kafka-python 3 logs a refused SASL login or an untrusted TLS certificate (with the exception
    object as a log argument, beside the connection, whose config names the client) and keeps
    retrying until its bootstrap timeout, then raises a plain timeout. This notices the exception
    in the log record, by class, so that the client's next call raises the real reason at once."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.failures: dict[str, KafkaError] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.args, tuple) or not record.args:
            return
        config = getattr(record.args[0], "config", None)
        client_id = config.get("client_id") if isinstance(config, dict) else None
        if client_id is None or client_id in self.failures:
            return
        for arg in record.args[1:]:
            if isinstance(arg, kerrors.SaslAuthenticationFailedError | kerrors.UnsupportedSaslMechanismError):
                self.failures[client_id] = AuthenticationFailed(str(arg))
            elif isinstance(arg, ssl.SSLCertVerificationError):
                self.failures[client_id] = AuthenticationFailed(f"TLS: the broker's certificate is not trusted ({arg})")
            elif isinstance(arg, kerrors.AuthorizationError):
                self.failures[client_id] = AuthorizationFailed(str(arg))

    def install(self, client_id: str) -> None:
        """Watch for `client_id` from now on (a new client starts with a clean slate)."""
        _deliver_bytes_read_before_a_close()
        self.failures.pop(client_id, None)
        kafka_logger = logging.getLogger("kafka")
        if self not in kafka_logger.handlers:
            kafka_logger.addHandler(self)

    def check(self, client_id: str) -> None:
        failure = self.failures.get(client_id)
        if failure is not None:
            raise failure


AUTH_WATCH = _AuthWatch()


async def _read_from_socket(transport: Any) -> None:
    """kafka-python 3.0.12's reading loop (KafkaTCPTransport._read_from_sock), except that bytes
    read in the same pass as the peer's close reach the protocol, and whatever waits on them, first."""
    while transport._read and not transport._closed:
        await transport._net.wait_read(transport._sock)
        received, error = transport._sock_recv()
        if received and transport._protocol is not None:
            transport.last_read = time.monotonic()
            if transport._protocol._sensors:
                transport._protocol._sensors.bytes_received.record(len(received))
            try:
                transport._protocol.data_received(received)
            except kerrors.KafkaProtocolError as protocol_error:
                return transport.abort(error=protocol_error)
            if error:
                await transport._net.sleep(0)  # what waits on those bytes runs before the close fails it
        if error:
            return transport.abort(error=error)


def _deliver_bytes_read_before_a_close() -> None:
    """The broker answers a refused SASL login and closes the connection at the same moment (after
    connection.failed.authentication.delay.ms); kafka-python 3.0.12 drops the bytes it reads in the
    same pass as a close, so a client that reads late (a busy machine) never sees the refusal and
    retries until its bootstrap timeout. Installed once, when the first client starts."""
    if ktransport.KafkaTCPTransport._read_from_sock is not _read_from_socket:
        ktransport.KafkaTCPTransport._read_from_sock = _read_from_socket


@contextmanager
def _translated(client_id: str) -> Iterator[None]:
    AUTH_WATCH.check(client_id)
    try:
        yield
    except kerrors.KafkaError as error:
        raise translate(error, client_id) from error
    except AssertionError as error:  # kafka-python asserts on misuse, e.g. a position of an unassigned partition
        raise InvalidUsage(str(error) or "invalid use of the consumer") from error


def _call(client_id: str, function: Callable[[], T]) -> T:
    with _translated(client_id):
        return function()


def client_config(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments shared by every kafka-python client."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "security_protocol": settings.security_protocol,
        # kafka-python backs off up to 30 s between reconnects; after an outage we want the services
        # back within seconds of the broker.
        "reconnect_backoff_max_ms": 2000,
    }
    optional = {
        "sasl_mechanism": settings.sasl_mechanism,
        "sasl_plain_username": settings.sasl_username,
        "sasl_plain_password": settings.sasl_password,
        "ssl_cafile": settings.ssl_cafile,
        "ssl_certfile": settings.ssl_certfile,
        "ssl_keyfile": settings.ssl_keyfile,
    }
    config.update({key: value for key, value in optional.items() if value})
    return config


def _tp(partition: Partition) -> TopicPartition:
    return TopicPartition(partition.topic, partition.partition)


class _Delivery:
    __slots__ = ("_future",)

    def __init__(self, future: FutureRecordMetadata) -> None:
        self._future = future

    def done(self) -> bool:
        return bool(self._future.is_done)

    def result(self, timeout_s: float | None = None) -> Acknowledgement:
        try:
            metadata = self._future.get(timeout=timeout_s)
        except kerrors.KafkaTimeoutError as error:
            if self._future.is_done:  # the record expired in the producer: it was not stored
                raise DeliveryFailed(str(error)) from error
            raise KafkaTimeout(str(error)) from error
        except kerrors.KafkaError as error:
            translated = translate(error)
            raise (translated if isinstance(translated, DeliveryFailed) else DeliveryFailed(str(error))) from error
        return Acknowledgement(metadata.topic, metadata.partition, metadata.offset)


class KafkaPythonProducer:
    def __init__(self, settings: KafkaSettings, options: ProducerOptions) -> None:
        self._client_id = options.client_id
        AUTH_WATCH.install(self._client_id)
        extra: dict[str, Any] = {} if options.batch_bytes is None else {"batch_size": options.batch_bytes}
        if options.transactional_id is not None:
            extra["transactional_id"] = options.transactional_id
            extra["transaction_timeout_ms"] = options.transaction_timeout_ms
        self._config: dict[str, Any] = {
            **client_config(settings),
            "client_id": options.client_id,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": options.linger_ms,
            "max_block_ms": options.max_block_ms,
            **extra,
        }
        self._producer = _call(self._client_id, lambda: KafkaProducer(**self._config))
        self._closed = False

    def send(
        self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None
    ) -> _Delivery | RefusedDelivery:
        # Called once per answer: a plain try instead of the `_translated` context manager.
        AUTH_WATCH.check(self._client_id)
        try:
            return _Delivery(self._producer.send(topic, value=value, key=key, partition=partition))
        except kerrors.KafkaError as error:
            translated = translate(error, self._client_id)
            if isinstance(translated, RecordTooLarge):
                return RefusedDelivery(translated)
            raise translated from error

    def flush(self, timeout_s: float | None = None) -> None:
        with _translated(self._client_id):
            self._producer.flush(timeout=timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._producer.close(timeout=timeout_s)
            except kerrors.KafkaError as error:
                log.warning("producer closed with unacknowledged records error=%r", error)


class KafkaPythonTransactionalProducer(KafkaPythonProducer):
    """kafka-python 3's transactions (KIP-98; offsets with the consumer's group metadata, KIP-447).

    kafka-python 3.0's own transactional calls wait without a limit, and one whose coordinator
    died mid-request waits forever (seen when a broker of three is killed under load): each call
    here waits on the library's request with a timeout instead, and a producer whose transaction
    neither commits nor aborts in time is replaced by a new one with the same transactional id,
    whose start aborts what the old one left open."""

    def __init__(self, settings: KafkaSettings, options: ProducerOptions) -> None:
        if options.transactional_id is None:
            raise InvalidUsage("a transactional producer needs a transactional_id")
        super().__init__(settings, options)
        self._initialised = False
        self._initialise()

    def _initialise(self) -> None:
        """Completes or aborts what an earlier producer with this id left open, and fences it."""
        _call(self._client_id, self._producer.init_transactions)
        self._initialised = True

    def _wait(self, start: Callable[[Any], Any], timeout_s: float, what: str) -> None:
        """Start one of the transaction manager's requests and wait for it at most `timeout_s`."""
        with _translated(self._client_id):
            result = start(self._producer._transaction_manager)
            self._producer._sender.wakeup()
            if not result.wait(timeout_ms=int(timeout_s * 1000)):
                raise KafkaTimeout(f"{what} not done after {timeout_s:.0f}s")

    def begin_transaction(self) -> None:
        if not self._initialised:
            # A producer whose start timed out. kafka-python would retry by waiting on the same
            # request, which never returns when its coordinator died mid-request (seen under
            # failover): a new producer asks again.
            self._start_again("its start timed out")
        _call(self._client_id, self._producer.begin_transaction)

    def commit_transaction(self, offsets: Mapping[Partition, int], consumer: Consumer, timeout_s: float = 30.0) -> None:
        committing = False
        try:
            if offsets:
                group = consumer.group_metadata()
                self._wait(
                    lambda manager: manager.send_offsets_to_transaction(_offsets_and_metadata(offsets), group),
                    timeout_s,
                    "offsets sent to the transaction",
                )
            committing = True
            self._wait(lambda manager: manager.begin_commit(), timeout_s, "commit")
        except ProducerFenced:
            raise
        except KafkaError as error:
            if isinstance(error, KafkaTimeout):
                # As on librdkafka: a call that timed out may be waiting on a coordinator that is
                # gone, and the same producer would wait again at every batch (seen under failover:
                # 30 s lost per batch); a new one asks afresh, and its start finishes this transaction.
                self._replace(f"not committed ({error})")
            else:
                self.abort_transaction(timeout_s)
            if committing:  # the commit may have reached the coordinator before it failed
                raise TransactionInDoubt(f"transaction ended, committed or aborted: {error}") from error
            raise TransactionAborted(f"transaction aborted: {error}") from error

    def abort_transaction(self, timeout_s: float = 30.0) -> None:
        """Abort, or (the abort itself failing) start a new producer, which aborts on the coordinator."""
        if not self._initialised:
            return  # a new producer, not started yet: it has no transaction, and its start aborts the old one's
        try:
            self._wait(lambda manager: manager.begin_abort(), timeout_s, "abort")
        except ProducerFenced:
            raise
        except KafkaError as error:
            self._replace(f"abort failed ({error})")

    def _replace(self, reason: str) -> None:
        """`_start_again`, its start failing quietly: begin_transaction starts yet another."""
        try:
            self._start_again(reason)
        except ProducerFenced:
            raise
        except KafkaError as error:  # its coordinator still moving
            log.warning("new transactional producer not started yet error=%r", error)

    def _start_again(self, reason: str) -> None:
        """Replace the producer by a new one with the same id; raises if the new one's start fails
        (`_initialised` stays False, and the next begin_transaction replaces it again)."""
        log.warning("transactional producer stuck, starting a new one with the same id reason=%s", reason[:300])
        self._initialised = False
        try:
            self._producer.close(timeout=0)
        except kerrors.KafkaError:
            pass  # what it still held fails: the batch is read again
        self._producer = _call(self._client_id, lambda: KafkaProducer(**self._config))
        self._initialise()


def _log_failed_commit(offsets: Mapping[TopicPartition, OffsetAndMetadata], outcome: object) -> None:
    """kafka-python calls this from a later poll with the commit's response or its exception."""
    if isinstance(outcome, Exception):
        log.warning("asynchronous offset commit failed partitions=%s error=%r", len(offsets), outcome)


def _offsets_and_metadata(offsets: Mapping[Partition, int]) -> dict[TopicPartition, OffsetAndMetadata]:
    return {_tp(p): OffsetAndMetadata(offset, "", -1) for p, offset in offsets.items()}


class _RevokeListener(AsyncConsumerRebalanceListener):
    """kafka-python 3 runs rebalance listeners on the consumer's IO loop, where a blocking call such
    as `commit()` is refused. An earlier version ran the callback in a worker thread and kept the
    loop turning meanwhile; under load that left the consumer stuck after the rebalance (no more
    fetches, then expelled from the group). So the callback only says what to commit, and this
    awaits the coordinator's own commit, as kafka-python's auto-commit does at the same point."""

    def __init__(self, on_revoke: RevokeCallback, consumer: KafkaConsumer) -> None:
        self.on_revoke = on_revoke
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        partitions = {Partition(tp.topic, tp.partition) for tp in revoked}
        if not partitions:
            return  # a first join: nothing owned, nothing to commit
        offsets = self.on_revoke(partitions)
        if not offsets:
            return
        coordinator = self.consumer._coordinator  # noqa: SLF001  (the async commit has no public name)
        try:
            await coordinator._commit_offsets_sync_async(  # noqa: SLF001
                _offsets_and_metadata(offsets),
                timeout_ms=REVOKE_COMMIT_TIMEOUT_MS,
            )
        except kerrors.KafkaError as error:
            log.warning("commit before a rebalance failed, the next owner may read again error=%r", error)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        pass


# kafka-python 3.0.12's poll sleeps retry_backoff_ms when it finds no record, no fetch in flight and
# nothing to wait on, which it also finds when a fetch's answer has arrived but is not parsed yet:
# with the default 100 ms the predictor's answers stopped for 100-146 ms one to three times per 10 s
# at 1,000 requests/s, with 10 ms once in nine such runs (docs/performance.md). Retries after errors
# come sooner too; reconnects keep their own back-off.
CONSUMER_RETRY_BACKOFF_MS = 10


class KafkaPythonConsumer:
    def __init__(self, settings: KafkaSettings, options: ConsumerOptions) -> None:
        self._client_id = options.client_id
        AUTH_WATCH.install(self._client_id)
        self._group_id = options.group_id
        self._consumer = _call(
            self._client_id,
            lambda: KafkaConsumer(
                **client_config(settings),
                client_id=options.client_id,
                group_id=options.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest" if options.read_from_start else "latest",
                max_poll_records=options.max_poll_records,
                session_timeout_ms=options.session_timeout_ms,
                heartbeat_interval_ms=options.heartbeat_interval_ms,
                max_poll_interval_ms=options.max_poll_interval_ms,
                fetch_max_wait_ms=options.fetch_max_wait_ms,
                retry_backoff_ms=CONSUMER_RETRY_BACKOFF_MS,
                isolation_level="read_committed" if options.read_committed else "read_uncommitted",
            ),
        )
        self._closed = False

    def poll(self, timeout_s: float, max_records: int | None = None) -> list[Record]:
        with _translated(self._client_id):
            polled = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
            self._finish_interrupted_join()
        self._check_topic_access()
        return [
            Record(record.topic, record.partition, record.offset, record.key, record.value)
            for records in polled.values()
            for record in records
        ]

    def _finish_interrupted_join(self) -> None:
        """kafka-python 3.0.12 can leave a group join unfinished: when the rejoin came from a metadata
        change (not from the broker) and the poll's timeout ends while the join is still in flight,
        the next poll no longer sees a rejoin as needed and never completes it. The consumer then
        holds no partitions, sends no heartbeats and is expelled (seen with the pipelined loop's
        short polls). Asking for the rejoin again lets the next poll finish it."""
        coordinator = self._consumer._coordinator  # noqa: SLF001  (the join state has no public accessor)
        if self._group_id is not None and coordinator.rejoining and not coordinator.need_rejoin():
            log.info("group join left unfinished by a poll timeout, completing it group=%s", self._group_id)
            coordinator.request_rejoin()

    def _check_topic_access(self) -> None:
        """kafka-python only logs a topic the broker will not describe to this principal, and its
        consumer then waits forever: its cluster metadata keeps the set, which this turns into our error."""
        denied = self._consumer._client.cluster.unauthorized_topics  # noqa: SLF001  (no public accessor)
        if denied:
            mine = {p.topic for p in self._consumer.assignment()} | set(self._consumer.subscription() or ())
            if denied & mine:
                raise AuthorizationFailed(f"topic(s) {sorted(denied & mine)} not authorized for this principal")

    def subscribe(self, topic: str, timeout_s: float = 30.0, on_revoke: RevokeCallback | None = None) -> None:
        if self._group_id is None:
            raise InvalidUsage("subscribe() needs a group id")
        wait_until_known(self.partitions_for, topic, timeout_s)
        with _translated(self._client_id):
            if on_revoke is None:
                self._consumer.subscribe([topic])
            else:
                self._consumer.subscribe([topic], listener=_RevokeListener(on_revoke, self._consumer))

    def assign(self, partitions: Iterable[Partition]) -> None:
        with _translated(self._client_id):
            self._consumer.assign([_tp(p) for p in partitions])

    def assignment(self) -> set[Partition]:
        with _translated(self._client_id):
            return {Partition(p.topic, p.partition) for p in self._consumer.assignment()}

    def partitions_for(self, topic: str) -> set[int]:
        with _translated(self._client_id):
            return set(self._consumer.partitions_for_topic(topic) or ())

    def _require_assigned(self, partition: Partition) -> TopicPartition:
        if partition not in self.assignment():
            raise InvalidUsage(f"partition {partition} is not assigned")
        return _tp(partition)

    def seek(self, partition: Partition, offset: int) -> None:
        tp = self._require_assigned(partition)
        with _translated(self._client_id):
            self._consumer.seek(tp, offset)

    def seek_to_beginning(self, partitions: Iterable[Partition]) -> None:
        tps = [self._require_assigned(p) for p in partitions]
        with _translated(self._client_id):
            self._consumer.seek_to_beginning(*tps)

    def seek_to_end(self, partitions: Iterable[Partition]) -> None:
        tps = [self._require_assigned(p) for p in partitions]
        with _translated(self._client_id):
            self._consumer.seek_to_end(*tps)

    def position(self, partition: Partition) -> int:
        tp = self._require_assigned(partition)
        with _translated(self._client_id):
            return int(self._consumer.position(tp))

    def end_offsets(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        with _translated(self._client_id):
            ends = self._consumer.end_offsets([_tp(p) for p in partitions])
        return {Partition(p.topic, p.partition): int(offset) for p, offset in ends.items()}

    def committed(self, partition: Partition) -> int | None:
        if self._group_id is None:
            raise InvalidUsage("committed() needs a group id")
        with _translated(self._client_id):
            offset = self._consumer.committed(_tp(partition))
        return None if offset is None else int(offset)

    def commit(self, offsets: Mapping[Partition, int]) -> None:
        if self._group_id is None:
            raise InvalidUsage("commit() needs a group id")
        if not offsets:
            return
        with _translated(self._client_id):
            self._consumer.commit(_offsets_and_metadata(offsets))

    def commit_async(self, offsets: Mapping[Partition, int]) -> None:
        if self._group_id is None:
            raise InvalidUsage("commit_async() needs a group id")
        if not offsets:
            return
        with _translated(self._client_id):
            self._consumer.commit_async(_offsets_and_metadata(offsets), callback=_log_failed_commit)

    def group_metadata(self) -> object:
        return self._consumer.group_metadata()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._consumer.close(autocommit=False)
            except kerrors.KafkaError as error:
                log.warning("consumer closed with an error error=%r", error)


class KafkaPythonAdmin:
    def __init__(self, settings: KafkaSettings, client_id: str, bootstrap_timeout_s: float = 5.0) -> None:
        self._client_id = client_id
        AUTH_WATCH.install(self._client_id)
        self._admin = _call(
            self._client_id,
            lambda: KafkaAdminClient(
                **client_config(settings), client_id=client_id, bootstrap_timeout_ms=int(bootstrap_timeout_s * 1000)
            ),
        )

    def list_topics(self) -> set[str]:
        with _translated(self._client_id):
            return set(self._admin.list_topics())

    def brokers(self) -> set[int]:
        with _translated(self._client_id):
            return {broker["broker_id"] for broker in self._admin.describe_cluster()["brokers"]}

    def replication_factors(self, names: Collection[str]) -> dict[str, int]:
        with _translated(self._client_id):
            described = self._admin.describe_topics(list(names))
        return {
            topic["name"]: min(len(partition["replica_nodes"]) for partition in topic["partitions"])
            for topic in described
            if topic["error_code"] == 0 and topic["partitions"]
        }

    def create_acls(self, rules: Sequence[AclRule]) -> None:
        acls = [
            ACL(
                principal=rule.principal,
                host="*",
                operation=getattr(ACLOperation, rule.operation.upper()),
                permission_type=ACLPermissionType.ALLOW,
                resource_pattern=ResourcePattern(
                    getattr(ResourceType, rule.resource.upper()), rule.name, ACLResourcePatternType.LITERAL
                ),
            )
            for rule in rules
        ]
        with _translated(self._client_id):
            result = self._admin.create_acls(acls)
        if result.get("failed"):
            acl, error = result["failed"][0]
            raise translate(error if isinstance(error, Exception) else kerrors.KafkaError(str(error)))

    def create_topics(self, specs: Sequence[TopicSpec], timeout_s: float = 30.0) -> list[str]:
        new = [
            NewTopic(spec.name, spec.partitions, spec.replication_factor or -1, topic_configs=dict(spec.configs))
            for spec in specs
        ]
        with _translated(self._client_id):
            result = self._admin.create_topics(
                new, timeout_ms=int(timeout_s * 1000), raise_errors=False, wait_for_metadata=False
            )
        created = []
        for topic in result["topics"]:
            code = topic["error_code"]
            if code == 0:
                created.append(topic["name"])
            elif code != kerrors.TopicAlreadyExistsError.errno:
                error = kerrors.for_code(code)(topic.get("error_message") or topic["name"])
                raise translate(error) from error
        # Consumers subscribe once their metadata knows a topic: wait until the broker lists it.
        deadline = time.monotonic() + timeout_s
        while created and not set(created) <= self.list_topics() and time.monotonic() < deadline:
            time.sleep(0.1)
        return created

    def close(self) -> None:
        with _translated(self._client_id):
            self._admin.close()
