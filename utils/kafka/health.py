"""Saying clearly when the broker is unreachable, and waiting for acknowledgements through an outage."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from utils import metrics
from utils.kafka.interface import FatalKafkaError, KafkaError, Producer

log = logging.getLogger(__name__)


class BrokerHealth(logging.Handler):
    """Turns the client libraries' own connection errors (they retry quietly; both log under the
    "kafka" logger) into two lines of ours: 'Kafka unreachable, waiting' when they start and
    'reachable again' when they stop, and the gauge `pipeline_kafka_reachable`.

    The first error is said at once, from the client's thread that logs it, so that a service busy
    waiting on the broker (a flush, a long read) says so too; the recovery is said by `check`, once
    the errors have stopped for QUIET_S."""

    QUIET_S = 10.0  # the clients back off for seconds between retries: shorter windows flap

    def __init__(self, bootstrap_servers: str):
        super().__init__(level=logging.ERROR)
        self.bootstrap_servers = bootstrap_servers
        self.last_error_at = 0.0
        self.last_error = ""
        self.down_since: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last_error_at = time.monotonic()
        self.last_error = record.getMessage()
        if self.down_since is None:
            self.down_since = self.last_error_at
            metrics.KAFKA_REACHABLE.set(0)
            log.warning(
                "Kafka unreachable, waiting and retrying bootstrap=%s error=%s",
                self.bootstrap_servers,
                self.last_error[:200],
            )

    def __enter__(self) -> BrokerHealth:
        metrics.KAFKA_REACHABLE.set(1)
        logging.getLogger("kafka").addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger("kafka").removeHandler(self)

    def check(self) -> None:
        """Call once per loop iteration."""
        failing = time.monotonic() - self.last_error_at < self.QUIET_S
        if not failing and self.down_since is not None:
            metrics.KAFKA_REACHABLE.set(1)
            log.info(
                "Kafka reachable again bootstrap=%s after_s=%.0f",
                self.bootstrap_servers,
                self.last_error_at - self.down_since,
            )
            self.down_since = None


def serve_until_stopped(bootstrap_servers: str, stop: threading.Event, step: Callable[[], bool]) -> None:
    """A service's main loop: `step()` again and again, the broker's health checked between steps,
    `pipeline_ready` 1 meanwhile; until `stop` is set or `step` returns False."""
    metrics.READY.set(1)
    try:
        with BrokerHealth(bootstrap_servers) as health:
            while not stop.is_set():
                health.check()
                if not step():
                    return
    finally:
        metrics.READY.set(0)


def flush_or_wait(producer: Producer, stop: threading.Event, what: str, log_every_s: float = 5.0) -> None:
    """Flush, logging while the broker does not acknowledge (e.g. during an outage)."""
    started = time.monotonic()
    while True:
        try:
            producer.flush(timeout_s=log_every_s)
            return
        except KafkaError as error:
            if isinstance(error, FatalKafkaError) or stop.is_set():
                raise
            log.warning("waiting for broker acknowledgements what=%s waited_s=%.0f", what, time.monotonic() - started)
