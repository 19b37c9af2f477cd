"""Serve a model version that is in the store (an earlier one, usually): every predictor swaps to it.
Without a version, during a rollout: reject the challenger, the champion serves on."""

from __future__ import annotations

import logging
import socket
import sys
import threading

from train.announce import Announcer
from train.champion import Registry, make_current
from train.mlflow_runs import record_rollback
from train.rollout.trial import Ending, Trials
from utils.cli import EXIT_CONFIGURATION, main
from utils.kafka.clients import create_producer
from utils.kafka.interface import ProducerOptions
from utils.kafka.topics import wait_for_broker
from utils.messages.events import ROLLBACK, ModelRolledBack
from utils.mlflow_outage import probe
from utils.model_store import ModelStore, ModelStoreError
from utils.scoring import load_scorer
from utils.settings import RollbackSettings

log = logging.getLogger(__name__)


def run(settings: RollbackSettings, stop: threading.Event) -> int:
    """0 once the rollback is announced; 2 if the version cannot serve (or, without a version, if no
    rollout is in progress)."""
    store = ModelStore(settings.common.model_store)
    rollout = store.challenger()
    previous = store.current_version()
    version = settings.version if settings.version is not None else previous if rollout is not None else None
    if version is None:
        log.error("no rollout in progress: give the version to serve (versions in the store: %s)", store.versions())
        return EXIT_CONFIGURATION
    try:
        load_scorer(store, version)  # refuse a version that would not serve
    except ModelStoreError as error:
        log.error("cannot roll back: %s (versions in the store: %s)", error, store.versions())
        return EXIT_CONFIGURATION
    probe(settings.common.tracking_uri)  # CURRENT and the registry's champion must not disagree: exit 4 first
    topics = settings.common.topics
    wait_for_broker(settings.common.kafka, topics, stop, (topics.model_events,))
    registry = Registry(settings.common.tracking_uri, settings.registered_model)
    producer = create_producer(settings.common.kafka, ProducerOptions("rollback"))
    try:
        announcer = Announcer(producer, topics.model_events, stop)
        if rollout is not None:
            reason = f"an operator rolled back to version {version}"
            Trials(store, registry, announcer).end(rollout, Ending(False, ROLLBACK, reason))
        if settings.version is not None:
            make_current(store, version, registry)
            announcer.announce(ModelRolledBack(version, previous, f"rollback-{socket.gethostname()}"))
    finally:
        producer.close(timeout_s=10)
    try:
        record_rollback(settings.common.tracking_uri, settings.experiment, previous, version)
    except Exception as error:  # MLflow is a record here; serving has moved already
        log.warning("rollback not recorded in MLflow error=%r", error)
    log.info("rolled back from_version=%s to_version=%s; predictors swap on the announcement", previous, version)
    return 0


if __name__ == "__main__":
    sys.exit(main("rollback", RollbackSettings, run, __doc__))
