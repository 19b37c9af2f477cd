"""What follows the publication of a version, for whichever version is the newest in the store:
recorded in MLflow, made current (direct rollout) or put on trial (shadow, canary), announced,
compiled ahead. Every step is idempotent, so `finish_latest` is safe to repeat after a crash or an
MLflow outage at any point: a trainer restarted mid-way completes the same work, once."""

from __future__ import annotations

import logging
import threading

from train.champion import make_current, record_champion
from train.compile_ahead import CompileAhead
from train.mlflow_runs import Tracker
from train.rollout.decision import should_make_current, should_start_trial
from train.rollout.tally import observations_end
from train.rollout.trial import Trials
from utils.event_history import already_announced, recent_events
from utils.messages.events import CANARY, SHADOW, ChallengerStarted, RolloutMode, TrainingCompleted
from utils.mlflow_outage import call_when_up
from utils.model_store import ModelStore, VersionMetadata
from utils.settings import KafkaSettings, Topics

log = logging.getLogger(__name__)


class Publisher:
    def __init__(
        self,
        store: ModelStore,
        tracker: Tracker,
        trials: Trials,
        compile_ahead: CompileAhead,
        kafka: KafkaSettings,
        topics: Topics,
        instance: str,
        stop: threading.Event,
    ):
        self.store = store
        self.tracker = tracker
        self.registry = trials.registry
        self.announcer = trials.announcer
        self.trials = trials
        self.compile_ahead = compile_ahead
        self.kafka = kafka
        self.topics = topics
        self.instance = instance
        self.stop = stop

    def finish_latest(self) -> None:
        """Make the newest version current (if its gate promoted it and it never was), announce it,
        start its trial (under a shadow or canary rollout)."""
        latest = self.store.require(self.store.latest_version())
        metadata = self.store.metadata(latest)

        def record() -> None:  # every step idempotent: repeated after an MLflow outage or a crash
            self.tracker.ensure_recorded(self.store, latest)
            if should_make_current(latest, metadata, self.store.promotion_history()):
                make_current(self.store, latest, self.registry)
            elif self.store.current_version() == latest:
                record_champion(latest, self.registry)

        call_when_up(record, self.registry.tracking_uri, self.stop)
        serving = self.store.current_version() == latest
        if serving:
            self.compile_ahead.start(latest)
        self._announce_once(latest, metadata, serving)
        if should_start_trial(latest, metadata, self.store.promotion_history()):
            self._start_trial(latest, metadata)

    def _announce_once(self, version: int, metadata: VersionMetadata, serving: bool) -> None:
        history = recent_events(self.kafka, self.topics.model_events, f"{self.instance}-history")
        if already_announced(history, version, serving):
            log.info("training completed already announced version=%s promoted=%s", version, serving)
            return
        event = TrainingCompleted(
            version, serving, metadata.metrics, metadata.trained_rows, metadata.observations_end_offset
        )
        self.announcer.announce(event)
        log.info(
            "training completed announced version=%s promoted=%s holdout_auc=%.4f",
            version,
            serving,
            metadata.metrics["holdout_auc"],
        )

    def _start_trial(self, version: int, metadata: VersionMetadata) -> None:
        """Put a version that passed the holdout gate on trial beside the champion."""
        trained_under = metadata.rollout
        mode: RolloutMode = CANARY if trained_under.mode == CANARY else SHADOW  # not direct: should_start_trial
        self.trials.start(
            ChallengerStarted(
                version,
                self.store.require(self.store.current_version()),
                mode,
                trained_under.canary_fraction,
                observations_end(self.kafka, self.topics.observations, f"{self.instance}-tally"),
            )
        )
