"""The pipeline's topics: created when missing, and waited for while the broker is unreachable."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from utils import metrics
from utils.kafka.clients import create_admin
from utils.kafka.interface import AuthenticationFailed, AuthorizationFailed, FatalKafkaError, KafkaError, TopicSpec
from utils.kafka.tls import check_tls
from utils.settings import KafkaSettings, Topics
from utils.shutdown import StopRequested

log = logging.getLogger(__name__)

STILL_WAITING_EVERY_S = 60.0


# On three or more brokers the pipeline's topics survive one broker failing with nothing
# acknowledged lost: three replicas, and a write acknowledged only once two have it.
CLUSTER_REPLICAS = 3
CLUSTER_MIN_INSYNC = 2


@dataclass(frozen=True)
class Replication:
    """How the topics the pipeline creates are replicated; None: the broker's default."""

    factor: int | None
    min_insync: int | None


def replication_for(kafka: KafkaSettings, brokers: int) -> Replication:
    """The settings' replication, or (0, the default) the one a cluster of `brokers` calls for."""
    cluster = brokers >= CLUSTER_REPLICAS
    factor = kafka.replication_factor or (CLUSTER_REPLICAS if cluster else None)
    min_insync = kafka.min_insync_replicas or (CLUSTER_MIN_INSYNC if cluster else None)
    if factor is not None and min_insync is not None and min_insync > factor:
        min_insync = factor  # an explicit small factor with the cluster's default min ISR: all replicas
    return Replication(factor, min_insync)


def under_replicated(factors: Mapping[str, int], wanted: Replication) -> dict[str, int]:
    """The existing topics with fewer replicas than wanted (name: replicas they have)."""
    if wanted.factor is None:
        return {}
    return {name: count for name, count in sorted(factors.items()) if count < wanted.factor}


def topic_specs(topics: Topics, replication: Replication = Replication(None, None)) -> list[TopicSpec]:
    """Creation options of each topic. Observations are the retraining data: kept forever."""
    forever = {"retention.ms": "-1", "retention.bytes": "-1"}
    in_sync = {} if replication.min_insync is None else {"min.insync.replicas": str(replication.min_insync)}
    return [
        TopicSpec(
            name,
            count,
            {**(forever if name == topics.observations else {}), **in_sync},
            replication_factor=replication.factor,
        )
        for name, count in topics.partitions().items()
    ]


def ensure_topics(kafka: KafkaSettings, topics: Topics, needed: Collection[str] | None = None) -> list[str]:
    """Create the topics a service needs (default: all of the pipeline's) that do not exist yet (the
    broker does not auto-create them), replicated as the settings and the cluster's size call for;
    warn about existing ones with fewer replicas than that.

    Only missing topics are asked for: with ACLs, a service may see its own topics, no others, and
    create none."""
    admin = create_admin(kafka)
    try:
        existing = admin.list_topics()
        replication = replication_for(kafka, len(admin.brokers()))
        wanted = [spec for spec in topic_specs(topics, replication) if needed is None or spec.name in needed]
        missing = [spec for spec in wanted if spec.name not in existing]
        try:
            created = admin.create_topics(missing) if missing else []
        except AuthorizationFailed as error:
            names = ", ".join(spec.name for spec in missing)
            raise AuthorizationFailed(
                f"topic(s) {names} do not exist or are not visible to user {kafka.sasl_username!r}, who may not "
                f"create them: create them and their ACLs first (python setup_acls.py, as admin) ({error})"
            ) from error
        present = [spec.name for spec in wanted if spec.name in existing]
        short = under_replicated(admin.replication_factors(present), replication) if present else {}
    finally:
        admin.close()
    for name in created:
        log.info("topic created topic=%s replication_factor=%s", name, replication.factor or "broker default")
    for name, count in short.items():
        log.warning(
            "topic under-replicated for this cluster topic=%s replicas=%d wanted=%d: "
            "fix it with `KAFKA_NODES=3 bash scripts/kafka.sh replicate %s %d` (or your cluster's "
            "kafka-reassign-partitions tool)",
            name,
            count,
            replication.factor,
            name,
            replication.factor,
        )
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


def wait_for_broker(
    kafka: KafkaSettings,
    topics: Topics,
    stop: threading.Event,
    needed: Collection[str] | None = None,
    retry_s: float = 2.0,
) -> None:
    """Ensure the topics a service needs (see ensure_topics), retrying while the broker is
    unreachable: one line when the wait starts, a reminder every STILL_WAITING_EVERY_S, one when it ends.

    Raises a FatalKafkaError at once if the broker refuses the credentials or the access, and
    StopRequested if asked to stop first."""
    check_credentials(kafka)
    down_since: float | None = None
    next_reminder = 0.0
    while not stop.is_set():
        try:
            check_tls(kafka)
            ensure_topics(kafka, topics, needed)
            metrics.KAFKA_REACHABLE.set(1)
            if down_since is not None:
                waited = time.monotonic() - down_since
                log.info("Kafka reachable again bootstrap=%s after_s=%.0f", kafka.bootstrap_servers, waited)
            return
        except FatalKafkaError as error:
            raise type(error)(
                f"Kafka at {kafka.bootstrap_servers} refused user {kafka.sasl_username!r} "
                f"(security_protocol={kafka.security_protocol}, mechanism={kafka.sasl_mechanism}): {error}"
            ) from error
        except KafkaError as error:
            now = time.monotonic()
            if down_since is None:
                metrics.KAFKA_REACHABLE.set(0)
                down_since, next_reminder = now, now + STILL_WAITING_EVERY_S
                log.warning(
                    "Kafka unreachable, waiting and retrying bootstrap=%s error=%r", kafka.bootstrap_servers, error
                )
            elif now >= next_reminder:
                next_reminder = now + STILL_WAITING_EVERY_S
                log.warning(
                    "still waiting for Kafka bootstrap=%s waited_s=%.0f", kafka.bootstrap_servers, now - down_since
                )
            stop.wait(retry_s)
    raise StopRequested(f"stopped while waiting for {kafka.bootstrap_servers}")
