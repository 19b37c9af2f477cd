"""The project's own, small view of Kafka: what the services use, and nothing else.

Services, the sample app and the benchmarks talk to these `Protocol`s and catch these exceptions;
one adapter per client library implements them (`kafka_python.py`, the default, and
`confluent.py`, librdkafka), and `tests/contract/` holds both to the same behaviour on a real
broker. Swapping the library is a setting (`--kafka-client`), not a code change.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol, runtime_checkable


class Partition(NamedTuple):
    """One partition of one topic."""

    topic: str
    partition: int


class Record(NamedTuple):
    """One consumed record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class Acknowledgement(NamedTuple):
    """Where the broker stored a sent record."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class AclRule:
    """Allow `principal` (e.g. "User:app") one `operation` (read, write, describe, create) on one
    resource (a topic or a consumer group), named literally."""

    principal: str
    resource: Literal["topic", "group"]
    name: str
    operation: Literal["read", "write", "describe", "create"]


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the pipeline creates it when it is missing."""

    name: str
    partitions: int
    configs: Mapping[str, str] = field(default_factory=dict)
    replication_factor: int | None = None  # None: the broker's default


# --- Exceptions: adapters translate their library's errors into these, by class, never by name. ---


class KafkaError(Exception):
    """A Kafka operation failed. Retrying may help unless it is a `FatalKafkaError`."""


class BrokerUnavailable(KafkaError):
    """No broker answered (down, unreachable, or not yet started)."""


class KafkaTimeout(KafkaError):
    """An operation (a flush, a metadata or offset look-up) did not complete in time."""


class DeliveryFailed(KafkaError):
    """The broker did not store a sent record."""


class RecordTooLarge(DeliveryFailed):
    """The record is larger than the broker or the producer accepts."""


class UnknownTopic(KafkaError):
    """The topic or partition does not exist (the broker does not create topics on use)."""


class CommitFailed(KafkaError):
    """Offsets were not committed, e.g. because the group rebalanced meanwhile."""


class FatalKafkaError(KafkaError):
    """Retrying cannot fix this: the service must stop and say why."""


class TransactionAborted(KafkaError):
    """The transaction did not commit and was aborted: consumers reading committed records never see
    what it sent, and the consumed offsets it carried stay uncommitted (read them again)."""


class TransactionInDoubt(KafkaError):
    """The commit failed or did not answer after it may have reached the coordinator. The
    transaction has ended there (an abort, or the start of a new producer with the same
    transactional id, finished it), committed or aborted, unknown which: read again from the
    consumer group's committed offsets, which say which."""


class ProducerFenced(FatalKafkaError):
    """A newer producer with the same transactional id took over: this one is a zombie and must stop."""


class AuthenticationFailed(FatalKafkaError):
    """The broker refused the credentials, or the client could not set up the secure connection."""


class AuthorizationFailed(FatalKafkaError):
    """The principal may not do this (an ACL denies it)."""


class InvalidUsage(FatalKafkaError):
    """The client was used in a way the contract does not allow (e.g. a seek on an unassigned partition)."""


# --- Options: decided by the project, mapped by each adapter to its library's names. ---


@dataclass(frozen=True)
class ProducerOptions:
    """Every producer writes with acks=all and idempotence: an acknowledged record is on every
    in-sync replica, and a retry after an outage does not write it twice."""

    client_id: str
    linger_ms: int = 1
    batch_bytes: int | None = None  # per-partition batch size; None: the library's default
    max_block_ms: int = 60_000  # how long send() waits for room in a full buffer
    # Set: a TransactionalProducer (create_transactional_producer); one id per instance slot, so
    # that a restarted instance fences the zombie of its predecessor.
    transactional_id: str | None = None
    # How long the broker lets a transaction stay open before it aborts it and fences the producer.
    # Above the serving loop's worst case (a 10 s flush, then offsets and commit with 30 s each,
    # while a broker fails over), so that a slow failover costs a wait, not the service.
    transaction_timeout_ms: int = 120_000


@dataclass(frozen=True)
class ConsumerOptions:
    """Offsets are committed by hand (never automatically), only once results are acknowledged."""

    client_id: str
    group_id: str | None = None  # None: assign() only, never joins a group nor commits
    max_poll_records: int = 500
    # A 10 s session: a dead member's partitions move to the survivors within ~10 s, not ~45 s.
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000
    fetch_max_wait_ms: int = 500
    read_from_start: bool = True  # where a partition without a committed offset starts
    read_committed: bool = False  # skip records of aborted (and not yet committed) transactions


# --- Protocols ---


class Delivery(Protocol):
    """The outcome of one send, known once the broker acknowledges (or refuses) the record."""

    def done(self) -> bool:
        """True once the outcome is known."""
        ...

    def result(self, timeout_s: float | None = None) -> Acknowledgement:
        """Wait for the outcome; raise `DeliveryFailed` (or `KafkaTimeout`) if the record was not stored."""
        ...


class RefusedDelivery:
    """A record the producer refused before sending it (e.g. too large): its delivery has failed."""

    __slots__ = ("_error",)

    def __init__(self, error: DeliveryFailed) -> None:
        self._error = error

    def done(self) -> bool:
        return True

    def result(self, timeout_s: float | None = None) -> Acknowledgement:
        raise self._error


@runtime_checkable
class Producer(Protocol):
    def send(self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None) -> Delivery:
        """Queue one record; returns at once (unless the buffer is full: then up to max_block_ms)."""
        ...

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued record is acknowledged or failed; `KafkaTimeout` if some are left."""
        ...

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what can be flushed within the timeout, then release the client. Idempotent."""
        ...


@runtime_checkable
class TransactionalProducer(Producer, Protocol):
    """A producer whose records, with a consumer group's offsets, become visible all together or
    not at all (Kafka transactions). Built with a `transactional_id`; fences older instances."""

    def begin_transaction(self) -> None:
        """Every send from now until the commit or abort belongs to one transaction."""
        ...

    def commit_transaction(self, offsets: Mapping[Partition, int], consumer: Consumer, timeout_s: float = 30.0) -> None:
        """Commit the records sent since `begin_transaction` together with `offsets` (next offsets of
        `consumer`'s group). `TransactionAborted` if it could not (it is aborted then: nothing of it
        is visible); `TransactionInDoubt` if the commit itself failed or did not answer (the
        group's committed offsets say whether it landed); `ProducerFenced` if a newer instance took over."""
        ...

    def abort_transaction(self, timeout_s: float = 30.0) -> None:
        """Drop the transaction in progress: none of its records will ever be read as committed."""
        ...


RevokeCallback = Callable[[set[Partition]], Mapping[Partition, int]]


class Consumer(Protocol):
    def poll(self, timeout_s: float, max_records: int | None = None) -> list[Record]:
        """Records from any assigned partition, in offset order within each partition; [] after the
        timeout. Returns as soon as some records are there."""
        ...

    def subscribe(self, topic: str, timeout_s: float = 30.0, on_revoke: RevokeCallback | None = None) -> None:
        """Join the group for `topic` once the cluster metadata knows the topic (else a fresh topic's
        partitions may go to nobody until the next metadata refresh). `on_revoke(partitions)` runs
        inside `poll` before a rebalance takes partitions away and returns the offsets to commit; the
        consumer commits them then, the last moment they count (the next owner starts there). It must
        not call this consumer, and should return quickly: the rebalance waits for it."""
        ...

    def assign(self, partitions: Iterable[Partition]) -> None:
        """Read exactly these partitions, outside any group's assignment."""
        ...

    def assignment(self) -> set[Partition]:
        """The partitions this consumer reads now."""
        ...

    def partitions_for(self, topic: str) -> set[int]:
        """Partition numbers of `topic`; empty if it does not exist."""
        ...

    def seek(self, partition: Partition, offset: int) -> None:
        """The next poll of `partition` starts at `offset`. `InvalidUsage` if it is not assigned."""
        ...

    def seek_to_beginning(self, partitions: Iterable[Partition]) -> None: ...

    def seek_to_end(self, partitions: Iterable[Partition]) -> None: ...

    def position(self, partition: Partition) -> int:
        """The offset of the next record a poll returns from `partition`."""
        ...

    def end_offsets(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        """The offset after the last record of each partition."""
        ...

    def committed(self, partition: Partition) -> int | None:
        """The group's committed offset of `partition`, or None."""
        ...

    def commit(self, offsets: Mapping[Partition, int]) -> None:
        """Commit these next-offsets for the group; `CommitFailed` if the group moved on."""
        ...

    def commit_async(self, offsets: Mapping[Partition, int]) -> None:
        """Send a commit of these next-offsets and return without waiting for the coordinator's answer;
        a failure is logged when a later poll learns it. For periodic commits on the serving path,
        where a later commit carries higher offsets; a stop or a rebalance commits with `commit`."""
        ...

    def group_metadata(self) -> object:
        """What a TransactionalProducer of the same library needs to commit this consumer's offsets
        (the group, its generation and this member: a member that left cannot commit)."""
        ...

    def close(self) -> None:
        """Leave the group (without committing) and release the client. Idempotent."""
        ...


class Admin(Protocol):
    def list_topics(self) -> set[str]:
        """The topics this principal may see."""
        ...

    def create_topics(self, specs: Sequence[TopicSpec], timeout_s: float = 30.0) -> list[str]:
        """Create the topics that do not exist yet; returns the names created."""
        ...

    def brokers(self) -> set[int]:
        """Ids of the brokers the cluster's metadata lists now (a node that is down is not among them)."""
        ...

    def replication_factors(self, names: Collection[str]) -> dict[str, int]:
        """The fewest replicas any partition of each of these topics has (topics not visible: left out)."""
        ...

    def create_acls(self, rules: Sequence[AclRule]) -> None:
        """Add these ALLOW rules (existing ones are kept; adding one twice is harmless)."""
        ...

    def close(self) -> None: ...
