"""A rollout from the trainer's side: put a version on trial, keep its paired tally, end the trial.

The tally is not kept in memory anywhere that matters: every predictor writes, into each labelled
request's observation, what both models said (`Observation.scores`). The observations log is the
tally; `PairedTally` reads it from where the rollout began, so a trainer or predictor restarted
mid-rollout loses nothing (a replayed batch counts once: the tally is keyed by request id).

Ending a trial writes the decision into the version's metadata first, so a trainer killed halfway
completes the same decision on restart (`conclude` is idempotent).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from train.judgement import PairedFigures
from train.mlflow_runs import record_rollout_decision
from train.promotion import DECISION_KEY, make_current
from utils.kafka.clients import create_consumer
from utils.kafka.health import flush_or_wait
from utils.kafka.interface import Consumer, ConsumerOptions, Partition, Producer
from utils.kafka.reading import read_available
from utils.messages.codec import MessageError, decode_object, encode
from utils.messages.events import ChallengerStarted, RolloutDecided
from utils.messages.requests import Observation
from utils.model_store import ModelStore
from utils.settings import KafkaSettings, Topics

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 30.0
READ_BATCH = 5000


@dataclass(frozen=True)
class Registry:
    """Where promotions are recorded in MLflow."""

    tracking_uri: str
    registered_model: str


class PairedTally:
    """The labelled requests both models of a rollout scored, read from the observations log."""

    def __init__(self, kafka: KafkaSettings, topic: str, rollout: ChallengerStarted, client_id: str):
        self.rollout = rollout
        self.partition = Partition(topic, 0)
        self.next_offset = rollout.observations_start
        self._pairs: dict[str, tuple[int, float, float]] = {}
        self._consumer: Consumer = create_consumer(
            kafka, ConsumerOptions(client_id, max_poll_records=READ_BATCH, read_committed=True)
        )

    def catch_up(self) -> int:
        """Read what predictors have committed since the last call; the number of paired requests."""
        champion, challenger = self.rollout.champion_version, self.rollout.version
        for record in read_available(self._consumer, self.partition, self.next_offset, READ_TIMEOUT_S, READ_BATCH):
            self.next_offset = record.offset + 1
            try:
                observation = Observation.from_dict(decode_object(record.value))
            except MessageError as error:
                log.warning("unreadable observation in the tally offset=%s error=%s", record.offset, error)
                continue
            scores = observation.scores or {}
            if champion in scores and challenger in scores:
                self._pairs[observation.request_id] = (observation.label, scores[champion], scores[challenger])
        return len(self._pairs)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Labels, the champion's probabilities, the challenger's probabilities."""
        if not self._pairs:
            return np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
        labels, champion, challenger = zip(*self._pairs.values(), strict=True)
        return np.array(labels, dtype=np.int64), np.array(champion), np.array(challenger)

    def close(self) -> None:
        self._consumer.close()


def observations_end(kafka: KafkaSettings, topic: str, client_id: str) -> int:
    """The observations log's end offset: where a rollout that starts now begins its tally."""
    consumer = create_consumer(kafka, ConsumerOptions(client_id))
    try:
        partition = Partition(topic, 0)
        return consumer.end_offsets([partition])[partition]
    finally:
        consumer.close()


def start_trial(
    store: ModelStore,
    rollout: ChallengerStarted,
    producer: Producer,
    topics: Topics,
    stop: threading.Event,
    registry: Registry,
) -> None:
    """Record the rollout in the store (where predictors that start later find it), then announce it.
    A rollout already in progress for another version is superseded: the newer version is judged."""
    current = store.challenger()
    if current is not None and current.version == rollout.version:
        rollout = current  # started before a restart: same tally start
    else:
        if current is not None:
            superseded = current
            reason = f"version {rollout.version} is on trial instead"
            end_trial(store, superseded, False, "superseded", reason, None, registry, producer, topics, stop)
        store.set_challenger(rollout)
    announce(producer, topics, rollout, stop)
    log.info(
        "challenger on trial version=%s champion=%s mode=%s canary_fraction=%s tally_from_offset=%s",
        rollout.version,
        rollout.champion_version,
        rollout.mode,
        rollout.canary_fraction,
        rollout.observations_start,
    )


def conclude(
    store: ModelStore,
    rollout: ChallengerStarted,
    promoted: bool,
    decided_by: str,
    reason: str,
    figures: PairedFigures | None,
    registry: Registry | None = None,
) -> RolloutDecided:
    """End a trial: the decision into the challenger's metadata, the challenger made current if
    promoted, the store's rollout cleared. Idempotent. Returns the announcement to send."""
    metadata = store.metadata(rollout.version)
    decision = metadata.get(DECISION_KEY)
    if decision is None:
        decision = {
            "promoted": promoted,
            "decided_by": decided_by,
            "reason": reason,
            "mode": rollout.mode,
            "champion_version": rollout.champion_version,
            "figures": figures.to_dict() if figures is not None else None,
        }
        store.update_metadata(rollout.version, {DECISION_KEY: decision})
    if decision["promoted"] and store.current_version() != rollout.version:
        if registry is None:
            store.set_current(rollout.version)
        else:
            make_current(store, rollout.version, registry.tracking_uri, registry.registered_model)
    current = store.challenger()
    if current is not None and current.version == rollout.version:
        store.set_challenger(None)
    log.info(
        "rollout decided version=%s promoted=%s decided_by=%s reason=%s",
        rollout.version,
        decision["promoted"],
        decision["decided_by"],
        decision["reason"],
    )
    return RolloutDecided(rollout.version, bool(decision["promoted"]), decision["decided_by"], decision["reason"])


def end_trial(
    store: ModelStore,
    rollout: ChallengerStarted,
    promoted: bool,
    decided_by: str,
    reason: str,
    figures: PairedFigures | None,
    registry: Registry,
    producer: Producer,
    topics: Topics,
    stop: threading.Event,
) -> RolloutDecided:
    """Conclude a trial (idempotent), tell the predictors, and record it on the challenger's MLflow
    run (best effort: the store's metadata is the record serving follows)."""
    decided = conclude(store, rollout, promoted, decided_by, reason, figures, registry)
    announce(producer, topics, decided, stop)
    run_id = store.metadata(rollout.version).get("mlflow_run_id", "")
    metrics = decision_metrics(figures) if figures is not None else {}
    record_rollout_decision(registry.tracking_uri, run_id, decided, metrics)
    return decided


def announce(
    producer: Producer, topics: Topics, message: ChallengerStarted | RolloutDecided, stop: threading.Event
) -> None:
    producer.send(topics.model_events, encode(message.to_dict()))
    flush_or_wait(producer, stop, message.EVENT)


def decision_metrics(figures: PairedFigures) -> dict[str, float]:
    """The figures of a live judgement as MLflow metrics of the challenger's training run."""
    return {
        "live_labelled": float(figures.labelled),
        "live_auc_champion": figures.champion["auc"],
        "live_auc_challenger": figures.challenger["auc"],
        "live_auc_difference": figures.auc_difference.estimate,
        "live_auc_difference_low": figures.auc_difference.low,
        "live_auc_difference_high": figures.auc_difference.high,
        "live_log_loss_champion": figures.champion["log_loss"],
        "live_log_loss_challenger": figures.challenger["log_loss"],
        "live_log_loss_difference": figures.log_loss_difference.estimate,
        "live_accuracy_champion": figures.champion["accuracy"],
        "live_accuracy_challenger": figures.challenger["accuracy"],
    }
