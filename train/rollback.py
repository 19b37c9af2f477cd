"""Serve an earlier model version again: verify it, make it current, tell the predictors."""

from __future__ import annotations

import logging
import socket
import threading

from train.promotion import make_current
from train.tracking import record_rollback
from utils.kafka.clients import create_producer
from utils.kafka.health import flush_or_wait
from utils.kafka.interface import ProducerOptions
from utils.kafka.topics import wait_for_broker
from utils.messages import ModelRolledBack, encode
from utils.model_store import ModelStore, ModelStoreError
from utils.scoring import load_scorer
from utils.settings import RollbackSettings
from utils.tracking import probe

log = logging.getLogger(__name__)


def run(settings: RollbackSettings, stop: threading.Event) -> int:
    """0 once the rollback is announced; 2 if the version cannot serve."""
    store = ModelStore(settings.common.model_store)
    try:
        load_scorer(store, settings.version)  # refuse a version that would not serve
    except ModelStoreError as error:
        log.error("cannot roll back: %s (versions in the store: %s)", error, store.versions())
        return 2
    previous = store.current_version()
    probe(settings.common.tracking_uri)  # CURRENT and the registry's champion must not disagree: exit 4 first
    wait_for_broker(settings.common.kafka, settings.common.topics, stop, (settings.common.topics.model_events,))
    make_current(store, settings.version, settings.common.tracking_uri, settings.registered_model)
    producer = create_producer(settings.common.kafka, ProducerOptions("rollback"))
    try:
        message = ModelRolledBack(settings.version, previous, f"rollback-{socket.gethostname()}")
        producer.send(settings.common.topics.model_events, encode(message.to_dict()))
        flush_or_wait(producer, stop, "rollback announcement")
    finally:
        producer.close(timeout_s=10)
    try:
        record_rollback(settings.common.tracking_uri, settings.experiment, previous, settings.version)
    except Exception as error:  # MLflow is a record here; serving has moved already
        log.warning("rollback not recorded in MLflow error=%r", error)
    log.info(
        "rolled back from_version=%s to_version=%s; predictors swap on the announcement", previous, settings.version
    )
    return 0
