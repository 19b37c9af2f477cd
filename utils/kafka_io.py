"""Kafka clients built from settings, topic creation, and waiting for the broker.

Every service talks to Kafka through these few functions, so that client options (security,
acks, offsets) are decided once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from utils.settings import KafkaSettings, Topics

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
# Kafka errors that retrying cannot fix: the service must stop and say why.
FATAL_ERROR_NAMES = frozenset(
    {
        "AuthenticationFailedError",
        "SaslAuthenticationFailedError",
        "AuthenticationMethodNotSupported",
        "UnsupportedSaslMechanismError",
        "IllegalSaslStateError",
        "TopicAuthorizationFailedError",
        "GroupAuthorizationFailedError",
        "ClusterAuthorizationFailedError",
    }
)


class BrokerUnavailable(RuntimeError):
    """The broker did not answer before the service was asked to stop."""


class KafkaAuthenticationError(RuntimeError):
    """The broker refused our credentials: retrying cannot help."""


class AuthFailureWatcher(logging.Handler):
    """kafka-python 3 logs a SASL authentication failure and keeps retrying until its bootstrap
    timeout, then raises a plain KafkaTimeoutError. This handler notices the logged failure so
    that a service with wrong credentials can stop at once with the real reason."""

    MARKERS = ("SaslAuthenticationFailedError", "Authentication failed", "AuthorizationFailed")

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.failure: str | None = None
        self.disconnects = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if self.failure is None and any(marker in message for marker in self.MARKERS):
            self.failure = message
        if "socket disconnected" in message:
            self.disconnects += 1


def is_fatal(error: BaseException) -> bool:
    return any(type(e).__name__ in FATAL_ERROR_NAMES for e in _chain(error))


def _chain(error: BaseException | None) -> Iterable[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


class BrokerHealth(logging.Handler):
    """Turns kafka-python's own connection errors (it retries quietly) into two lines of ours:
    'Kafka unreachable, waiting' when they start and 'reachable again' when they stop."""

    QUIET_S = 10.0  # kafka-python backs off for seconds between retries: shorter windows flap

    def __init__(self, bootstrap_servers: str):
        super().__init__(level=logging.ERROR)
        self.bootstrap_servers = bootstrap_servers
        self.last_error_at = 0.0
        self.last_error = ""
        self.down_since: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last_error_at = time.monotonic()
        self.last_error = record.getMessage()

    def __enter__(self) -> BrokerHealth:
        logging.getLogger("kafka").addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger("kafka").removeHandler(self)

    def check(self) -> None:
        """Call once per loop iteration."""
        now = time.monotonic()
        failing = now - self.last_error_at < self.QUIET_S
        if failing and self.down_since is None:
            self.down_since = self.last_error_at
            log.warning(
                "Kafka unreachable, waiting and retrying bootstrap=%s error=%s",
                self.bootstrap_servers,
                self.last_error[:200],
            )
        elif not failing and self.down_since is not None:
            log.info(
                "Kafka reachable again bootstrap=%s after_s=%.0f",
                self.bootstrap_servers,
                self.last_error_at - self.down_since,
            )
            self.down_since = None


def create_producer(kafka: KafkaSettings, client_id: str, **overrides) -> KafkaProducer:
    # acks=all + idempotence: an acknowledged answer is on every in-sync replica, and retries
    # after a broker outage do not write it twice.
    options = {"client_id": client_id, "acks": "all", "enable_idempotence": True, "linger_ms": 1}
    options.update(overrides)
    if kafka.client == "confluent":
        from utils.confluent_client import create_confluent_producer

        return create_confluent_producer(kafka.client_config(), **options)
    return KafkaProducer(**kafka.client_config(), **options)


def create_consumer(kafka: KafkaSettings, client_id: str, group_id: str | None, **overrides) -> KafkaConsumer:
    # Offsets are committed by hand, only after the results are acknowledged (at-least-once).
    # A 10 s session (kafka-python 3 defaults to 45 s): after a crash, the dead member's partitions
    # go to the survivors or the restarted process within ~10 s instead of ~45 s.
    options = {
        "client_id": client_id,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": 10000,
        "heartbeat_interval_ms": 3000,
    }
    options.update(overrides)
    if kafka.client == "confluent":
        from utils.confluent_client import create_confluent_consumer

        return create_confluent_consumer(kafka.client_config(), **options)
    return KafkaConsumer(**kafka.client_config(), **options)


def poll_records(consumer: KafkaConsumer, timeout_ms: int) -> list:
    """One poll's records, all partitions together, in the order the consumer returned them."""
    return [record for batch in consumer.poll(timeout_ms=timeout_ms).values() for record in batch]


def topic_configs(topics: Topics) -> dict[str, dict]:
    """Creation options of each topic. Observations are the retraining data: kept forever."""
    configs = {name: {"num_partitions": count} for name, count in topics.partitions().items()}
    configs[topics.observations]["configs"] = {"retention.ms": "-1", "retention.bytes": "-1"}
    return configs


def ensure_topics(kafka: KafkaSettings, topics: Topics, timeout_ms: int = 30000) -> None:
    """Create the pipeline's topics if they do not exist yet (the broker does not auto-create)."""
    admin = KafkaAdminClient(**kafka.client_config(), client_id="pipeline-admin", bootstrap_timeout_ms=5000)
    try:
        result = admin.create_topics(
            topic_configs(topics), timeout_ms=timeout_ms, raise_errors=False, wait_for_metadata=True
        )
        for topic in result["topics"]:
            if topic["error_code"] not in (0, TOPIC_ALREADY_EXISTS):
                raise KafkaError(
                    f"cannot create topic {topic['name']}: error {topic['error_code']} {topic.get('error_message')}"
                )
            if topic["error_code"] == 0:
                log.info("topic created topic=%s", topic["name"])
    finally:
        admin.close()


def wait_for_broker(kafka: KafkaSettings, topics: Topics, stop: threading.Event, retry_s: float = 2.0) -> None:
    """Create the topics, retrying (and saying so) while the broker is unreachable.

    Raises BrokerUnavailable if asked to stop first, and KafkaAuthenticationError at once if the
    broker refuses the credentials."""
    if kafka.security_protocol.startswith("SASL") and not (kafka.sasl_username and kafka.sasl_password):
        raise KafkaAuthenticationError(
            f"security_protocol={kafka.security_protocol} needs credentials: set KAFKA_SASL_USERNAME and "
            "KAFKA_SASL_PASSWORD (or --sasl-username / --sasl-password)"
        )
    if kafka.security_protocol.startswith("SASL") and not kafka.sasl_mechanism:
        raise KafkaAuthenticationError("SASL needs a mechanism: set KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256...)")
    attempt = 0
    watcher = AuthFailureWatcher()
    kafka_logger = logging.getLogger("kafka")
    while not stop.is_set():
        kafka_logger.addHandler(watcher)
        try:
            ensure_topics(kafka, topics)
            if attempt:
                log.info("broker reachable again bootstrap=%s", kafka.bootstrap_servers)
            return
        except Exception as error:
            if watcher.failure or is_fatal(error):
                reason = watcher.failure or repr(error)
                raise KafkaAuthenticationError(
                    f"Kafka at {kafka.bootstrap_servers} refused user {kafka.sasl_username!r} "
                    f"(security_protocol={kafka.security_protocol}, mechanism={kafka.sasl_mechanism}): {reason}"
                ) from error
            attempt += 1
            log.warning("waiting for Kafka bootstrap=%s attempt=%s error=%r", kafka.bootstrap_servers, attempt, error)
            if watcher.disconnects and kafka.security_protocol == "PLAINTEXT":
                # A SASL or SSL listener accepts the TCP connection, then drops a client that does
                # not authenticate: that looks like this, not like a broker that is down.
                log.warning(
                    "the broker accepts connections and then drops them: if it requires authentication, "
                    "set KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
                )
            stop.wait(retry_s)
        finally:
            kafka_logger.removeHandler(watcher)
    raise BrokerUnavailable(f"stopped while waiting for {kafka.bootstrap_servers}")


def subscribe(consumer: KafkaConsumer, topic: str, timeout_s: float = 30.0) -> None:
    """Join the consumer group for `topic` once this client's metadata knows the topic.

    Subscribing right after the topic was created can otherwise let the group leader assign
    with stale metadata: the topic's partitions go to nobody until the next metadata refresh
    (5 minutes by default)."""
    deadline = time.monotonic() + timeout_s
    while not consumer.partitions_for_topic(topic):
        if time.monotonic() > deadline:
            raise KafkaError(f"topic {topic} is not in the cluster metadata after {timeout_s:.0f}s")
        time.sleep(0.2)
    consumer.subscribe([topic])


def assign_from_end(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    """Read every partition of `topic` from now on, outside any consumer group."""
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    if not partitions:
        raise KafkaError(f"topic {topic} does not exist")
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for partition in partitions:
        consumer.position(partition)  # resolve now: a message sent after this call will be seen
    return partitions


def flush_or_wait(producer: KafkaProducer, stop: threading.Event, what: str, log_every_s: float = 5.0) -> None:
    """Flush, logging while the broker does not acknowledge (e.g. during an outage)."""
    started = time.monotonic()
    while True:
        try:
            producer.flush(timeout=log_every_s)
            return
        except KafkaError as error:
            if is_fatal(error) or stop.is_set():
                raise
            log.warning("waiting for broker acknowledgements what=%s waited_s=%.0f", what, time.monotonic() - started)
