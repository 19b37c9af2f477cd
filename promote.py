"""Promote the challenger of the rollout in progress now, before its trial ends: every predictor serves it."""

from __future__ import annotations

import logging
import sys
import threading

from train.announce import Announcer
from train.champion import Registry
from train.rollout.judgement import PairedFigures, paired_figures
from train.rollout.tally import PairedTally
from train.rollout.trial import Ending, Trials
from utils.cli import EXIT_CONFIGURATION, main
from utils.kafka.clients import create_producer
from utils.kafka.interface import KafkaError, ProducerOptions
from utils.kafka.topics import wait_for_broker
from utils.messages.events import OPERATOR, ChallengerStarted
from utils.mlflow_outage import probe
from utils.model_store import ModelStore, ModelStoreError
from utils.scoring import load_scorer
from utils.settings import PromoteSettings

log = logging.getLogger(__name__)


def run(settings: PromoteSettings, stop: threading.Event) -> int:
    """0 once the promotion is announced; 2 if no rollout is in progress or its challenger cannot serve."""
    store = ModelStore(settings.common.model_store)
    rollout = store.challenger()
    if rollout is None:
        log.error("no rollout in progress: nothing to promote (rollback.py serves any version)")
        return EXIT_CONFIGURATION
    try:
        load_scorer(store, rollout.version)
    except ModelStoreError as error:
        log.error("the challenger cannot serve: %s", error)
        return EXIT_CONFIGURATION
    probe(settings.common.tracking_uri)
    topics = settings.common.topics
    wait_for_broker(settings.common.kafka, topics, stop, (topics.model_events, topics.observations))
    figures = tally_so_far(settings, rollout)
    labelled = figures.labelled if figures is not None else 0
    reason = f"an operator promoted it after {labelled} paired labelled requests"
    registry = Registry(settings.common.tracking_uri, settings.registered_model)
    producer = create_producer(settings.common.kafka, ProducerOptions("promote"))
    try:
        trials = Trials(store, registry, Announcer(producer, topics.model_events, stop))
        trials.end(rollout, Ending(True, OPERATOR, reason, figures))
    finally:
        producer.close(timeout_s=10)
    log.info("challenger promoted version=%s paired_labelled=%s", rollout.version, labelled)
    return 0


def tally_so_far(settings: PromoteSettings, rollout: ChallengerStarted) -> PairedFigures | None:
    """The live figures at the time of the decision, for the record (None if they cannot be had)."""
    try:
        tally = PairedTally(settings.common.kafka, settings.common.topics.observations, rollout, "promote-tally")
        try:
            tally.catch_up()
            labels, champion, challenger = tally.arrays()
        finally:
            tally.close()
    except KafkaError as error:
        log.warning("live figures not read, promoting without them error=%r", error)
        return None
    if len(labels) < 2 or labels.min() == labels.max():
        return None
    return paired_figures(labels, champion, challenger, confidence=0.95)


if __name__ == "__main__":
    sys.exit(main("promote", PromoteSettings, run, __doc__))
