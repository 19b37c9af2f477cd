"""Serve an earlier model version again: verify it, point CURRENT at it, tell the predictors."""

from __future__ import annotations

import logging
import threading

from train.tracking import point_champion_at
from utils.kafka_io import create_producer, flush_or_wait, wait_for_broker
from utils.messages import TrainingCompleted, encode
from utils.model_store import ModelStore, ModelStoreError
from utils.scoring import load_scorer
from utils.settings import RollbackSettings

log = logging.getLogger(__name__)


def run(settings: RollbackSettings, stop: threading.Event) -> int:
    store = ModelStore(settings.common.model_store)
    try:
        load_scorer(store, settings.version)  # refuse a version that would not serve
    except ModelStoreError as error:
        log.error("cannot roll back: %s (versions in the store: %s)", error, store.versions())
        return 2
    previous = store.current_version()
    store.set_current(settings.version)
    metadata = store.metadata(settings.version)
    wait_for_broker(settings.common.kafka, settings.common.topics, stop)
    producer = create_producer(settings.common.kafka, "rollback")
    try:
        message = TrainingCompleted(
            settings.version,
            True,
            metadata["metrics"],
            metadata["trained_rows"],
            metadata.get("observations_end_offset", 0),
        )
        producer.send(settings.common.topics.retrain, value=encode(message.to_dict()))
        flush_or_wait(producer, stop, "rollback announcement")
    finally:
        producer.close(timeout=10)
    try:
        point_champion_at(settings.common.tracking_uri, settings.registered_model, settings.version)
    except Exception as error:  # the registry is a record; serving has already moved
        log.warning("MLflow champion alias not moved error=%r", error)
    log.info(
        "rolled back from_version=%s to_version=%s; predictors swap on the announcement", previous, settings.version
    )
    return 0
