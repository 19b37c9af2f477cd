"""The pipeline's topics: created when missing, and waited for while the broker is unreachable."""

from __future__ import annotations

import logging
import threading

from utils.kafka.clients import create_admin
from utils.kafka.interface import AuthenticationFailed, FatalKafkaError, KafkaError, TopicSpec
from utils.settings import KafkaSettings, Topics
from utils.shutdown import StopRequested

log = logging.getLogger(__name__)


def topic_specs(topics: Topics) -> list[TopicSpec]:
    """Creation options of each topic. Observations are the retraining data: kept forever."""
    forever = {"retention.ms": "-1", "retention.bytes": "-1"}
    return [
        TopicSpec(name, count, forever if name == topics.observations else {})
        for name, count in topics.partitions().items()
    ]


def ensure_topics(kafka: KafkaSettings, topics: Topics) -> list[str]:
    """Create the pipeline's topics that do not exist yet (the broker does not auto-create them)."""
    admin = create_admin(kafka)
    try:
        created = admin.create_topics(topic_specs(topics))
    finally:
        admin.close()
    for name in created:
        log.info("topic created topic=%s", name)
    return created


def check_credentials(kafka: KafkaSettings) -> None:
    """Settings that cannot work, refused before any connection."""
    if kafka.security_protocol.startswith("SASL") and not (kafka.sasl_username and kafka.sasl_password):
        raise AuthenticationFailed(
            f"security_protocol={kafka.security_protocol} needs credentials: set KAFKA_SASL_USERNAME and "
            "KAFKA_SASL_PASSWORD (or --sasl-username / --sasl-password)"
        )
    if kafka.security_protocol.startswith("SASL") and not kafka.sasl_mechanism:
        raise AuthenticationFailed("SASL needs a mechanism: set KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256...)")


def wait_for_broker(kafka: KafkaSettings, topics: Topics, stop: threading.Event, retry_s: float = 2.0) -> None:
    """Create the topics, retrying (and saying so) while the broker is unreachable.

    Raises a FatalKafkaError at once if the broker refuses the credentials or the access, and
    StopRequested if asked to stop first."""
    check_credentials(kafka)
    attempt = 0
    while not stop.is_set():
        try:
            ensure_topics(kafka, topics)
            if attempt:
                log.info("broker reachable again bootstrap=%s", kafka.bootstrap_servers)
            return
        except FatalKafkaError as error:
            raise type(error)(
                f"Kafka at {kafka.bootstrap_servers} refused user {kafka.sasl_username!r} "
                f"(security_protocol={kafka.security_protocol}, mechanism={kafka.sasl_mechanism}): {error}"
            ) from error
        except KafkaError as error:
            attempt += 1
            log.warning("waiting for Kafka bootstrap=%s attempt=%s error=%r", kafka.bootstrap_servers, attempt, error)
            stop.wait(retry_s)
    raise StopRequested(f"stopped while waiting for {kafka.bootstrap_servers}")
