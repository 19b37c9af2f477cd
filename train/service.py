"""The trainer: consume retrain requests, retrain on adult.data plus every labelled observation so
far, tune, gate the new model against the serving one on the fixed holdout, publish it, announce it.

Requests that arrive during a retrain wait in Kafka and are coalesced at the next poll: one retrain
covers them all. A request's offset is committed only after its "training completed" is acknowledged,
and every step after training is idempotent (the decision lives in the version's metadata), so a
trainer killed at any point redoes or finishes the same work on restart, without version gaps.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
from typing import Any

import pandas as pd

from train.drift import PSI_WARNING, drifted, feature_drift, prediction_shift
from train.judgement import WAIT, PairedFigures, judge
from train.mlflow_runs import Tracker, adult_data_input, observations_input
from train.observations import observations_frame, read_observations
from train.pipeline import timed, train_version
from train.promotion import (
    DECISION_KEY,
    ROLLOUT_KEY,
    holdout_gate,
    make_current,
    record_champion,
    should_make_current,
    should_start_trial,
)
from train.requests import retrain_target
from train.rollout import PairedTally, Registry, end_trial, observations_end, start_trial
from train.spark import spark_session
from utils import metrics
from utils.compiled_cache import start_build
from utils.data import frame_to_records, load_test, load_train, split_test
from utils.event_history import already_announced, recent_events
from utils.kafka.clients import create_consumer, create_producer
from utils.kafka.health import BrokerHealth, flush_or_wait
from utils.kafka.interface import (
    Consumer,
    ConsumerOptions,
    FatalKafkaError,
    KafkaError,
    Partition,
    Producer,
    ProducerOptions,
    Record,
)
from utils.kafka.offsets import commit_offsets
from utils.kafka.topics import wait_for_broker
from utils.messages.codec import encode
from utils.messages.events import ChallengerStarted, TrainingCompleted
from utils.metrics import serve_metrics
from utils.mlflow_outage import TrackingUnavailable, call_when_up, is_outage, wait_for_tracking
from utils.model_store import ModelStore
from utils.scoring import load_scorer
from utils.settings import TrainerSettings
from utils.shutdown import StopRequested

log = logging.getLogger(__name__)

MIN_DRIFT_ROWS = 200  # PSI on fewer rows is mostly noise


class TrainerService:
    def __init__(self, settings: TrainerSettings, stop: threading.Event):
        self.settings = settings
        self.topics = settings.common.topics
        self.stop = stop
        self.store = ModelStore(settings.common.model_store)
        self.instance = f"trainer-{socket.gethostname()}-{os.getpid()}"
        self._build: subprocess.Popen | None = None  # a compiled form being built in the background
        self._tally: PairedTally | None = None  # of the rollout in progress
        self._next_judgement = 0.0
        self.spark: Any = None  # a Spark session while serving, with --spark-master

    def run(self) -> int:
        if self.store.current_version() is None:
            log.error("no model version in %s: run `python initialize.py` first", self.store.root)
            return 2
        kafka = self.settings.common.kafka
        needed = (self.topics.retrain, self.topics.observations, self.topics.model_events)
        wait_for_broker(kafka, self.topics, self.stop, needed)  # first: wrong credentials fail at once
        self.base_training = load_train()
        _, self.holdout = split_test(load_test())
        tracking_uri = self.settings.common.tracking_uri
        self.tracker = call_when_up(
            lambda: Tracker(tracking_uri, self.settings.experiment, self.settings.registered_model),
            tracking_uri,
            self.stop,
        )
        serve_metrics(self.settings.metrics_port)
        self.producer: Producer = create_producer(kafka, ProducerOptions(self.instance))
        # A retrain may outlast the default 5-minute poll interval; the group must not evict us.
        self.consumer: Consumer = create_consumer(
            kafka,
            ConsumerOptions(
                self.instance,
                self.settings.group_id,
                max_poll_records=100,
                max_poll_interval_ms=3_600_000,
                read_committed=True,  # retrain requests of exactly-once predictors count once committed
            ),
        )
        try:
            self.consumer.subscribe(self.topics.retrain)
            self.store.remove_incomplete()
            self.finish_latest()
            with spark_session(self.settings.tuning.spark, "trainer") as self.spark:
                log.info(
                    "trainer ready topic=%s group=%s hyper=%s max_evals=%s spark_master=%s",
                    self.topics.retrain,
                    self.settings.group_id,
                    self.settings.tuning.hyper,
                    self.settings.tuning.max_evals,
                    self.settings.tuning.spark.master or "-",
                )
                self._serve()
        finally:
            if self._tally is not None:
                self._tally.close()
            self.consumer.close()
            self.producer.close(timeout_s=10)
            log.info("trainer stopped")
        return 0

    def _serve(self) -> None:
        with BrokerHealth(self.settings.common.kafka.bootstrap_servers) as health:
            while not self.stop.is_set():
                health.check()
                if not self._serve_once():
                    return

    def _serve_once(self) -> bool:
        """Handle one poll's requests; False once the service must stop."""
        if time.monotonic() >= self._next_judgement:
            self._judge_rollout()
            self._next_judgement = time.monotonic() + self.settings.rollout.judge_interval_s
        records = self.consumer.poll(1.0)
        if not records:
            return True
        target = retrain_target(records)
        try:
            if target is not None:
                self.retrain(target.observations_end_offset, coalesced=target.coalesced)
            self.consumer.commit(commit_offsets(records))
        except StopRequested:
            log.info("retrain abandoned: stopping; the request stays uncommitted and will be redone")
            return False
        except KafkaError as error:
            if isinstance(error, FatalKafkaError):
                raise
            log.warning("retrain not acknowledged, will replay error=%r", error)
            self._rewind(records)
        except Exception as error:
            if not (isinstance(error, TrackingUnavailable) or is_outage(error)):
                raise
            log.warning("retrain interrupted: MLflow unreachable; the request stays uncommitted and is redone")
            self._rewind(records)
            wait_for_tracking(self.settings.common.tracking_uri, self.stop)
        return True

    def retrain(self, end_offset: int, coalesced: int = 1) -> None:
        latest = self.store.require(self.store.latest_version())
        latest_metadata = self.store.metadata(latest)
        if latest_metadata.get("observations_end_offset", 0) >= end_offset:
            log.info("retrain already covered end_offset=%s by_version=%s", end_offset, latest)
            self.finish_latest()
            return
        champion = self.store.require(self.store.current_version())
        champion_metadata = self.store.metadata(champion)
        timings: dict[str, float] = {}
        with timed(timings, "read_observations"):
            observations = read_observations(
                self.settings.common.kafka, self.topics.observations, end_offset, self.settings.max_observations
            )
        with timed(timings, "observations_frame"):
            new_rows = observations_frame(observations)
            training = pd.concat([self.base_training, new_rows], ignore_index=True)
        log.info(
            "retrain started end_offset=%s coalesced_requests=%s new_rows=%s training_rows=%s champion=%s",
            end_offset,
            coalesced,
            len(new_rows),
            len(training),
            champion,
        )
        with timed(timings, "drift"):
            drift = self.measure_drift(champion, new_rows)
        metrics.RETRAINS_STARTED.inc()
        started = time.monotonic()
        trained = train_version(
            training,
            self.holdout,
            self.settings.tuning,
            self.store,
            self.tracker,
            trigger="retrain",
            extra_metadata={
                ROLLOUT_KEY: {
                    "mode": self.settings.rollout.mode,
                    "canary_fraction": self.settings.rollout.canary_fraction,
                },
                "observations_end_offset": end_offset,
                "new_rows": len(new_rows),
                "replaces_version": champion,
                "replaces_mlflow_run_id": champion_metadata.get("mlflow_run_id", ""),
            },
            warm_start=champion_metadata.get("params"),
            should_stop=self.stop.is_set,
            promotion_gate=holdout_gate(champion_metadata["metrics"], self.settings.promotion_tolerance),
            extra_metrics=drift,
            inputs=[
                adult_data_input(self.base_training),
                observations_input(
                    new_rows, self.topics.observations, max(0, end_offset - self.settings.max_observations), end_offset
                ),
            ],
            spark=self.spark,
            timings=timings,
        )
        metrics.RETRAIN_SECONDS.observe(time.monotonic() - started)
        (metrics.RETRAINS_COMPLETED if trained.promoted else metrics.RETRAINS_REJECTED).inc()
        self.finish_latest()
        self.store.prune(self.settings.keep_versions)

    def measure_drift(self, champion: int, new_rows: pd.DataFrame) -> dict[str, float]:
        """PSI per feature of the new observations against adult.data, and the shift of the serving
        model's predictions between the two; logged to MLflow with the retrain, warned about above
        the threshold."""
        if len(new_rows) < MIN_DRIFT_ROWS:
            log.info("drift not measured new_rows=%s minimum=%s", len(new_rows), MIN_DRIFT_ROWS)
            return {}
        features = feature_drift(self.base_training, new_rows)
        for name, value in features.items():
            metrics.FEATURE_DRIFT.labels(feature=name).set(value)
        scorer = load_scorer(self.store, champion)
        shift = prediction_shift(
            scorer.predict_proba(frame_to_records(self.base_training)), scorer.predict_proba(frame_to_records(new_rows))
        )
        moved = drifted(features)
        if moved or shift["probability_psi"] > PSI_WARNING:
            log.warning(
                "drift above threshold features=%s prediction_psi=%.3f threshold=%s",
                ",".join(moved) or "-",
                shift["probability_psi"],
                PSI_WARNING,
            )
        return {
            **{f"drift_psi_{name}": value for name, value in features.items()},
            **{f"drift_{name}": value for name, value in shift.items()},
        }

    def finish_latest(self) -> None:
        """Make the newest version current (if its gate promoted it and it never was) and announce it.
        Idempotent: safe to repeat after a crash at any point."""
        latest = self.store.require(self.store.latest_version())
        metadata = self.store.metadata(latest)
        registry = (self.settings.common.tracking_uri, self.settings.registered_model)

        def record() -> None:  # every step idempotent: repeated after an MLflow outage or a crash
            self.tracker.ensure_recorded(self.store, latest)
            if should_make_current(latest, metadata, self.store.promotion_history()):
                make_current(self.store, latest, *registry)
            elif self.store.current_version() == latest:
                record_champion(latest, *registry)

        call_when_up(record, self.settings.common.tracking_uri, self.stop)
        serving = self.store.current_version() == latest
        if serving:
            self._compile(latest)
        message = TrainingCompleted(
            latest, serving, metadata["metrics"], metadata["trained_rows"], metadata.get("observations_end_offset", 0)
        )
        history = recent_events(self.settings.common.kafka, self.topics.model_events, f"{self.instance}-history")
        if already_announced(history, latest, serving):
            log.info("training completed already announced version=%s promoted=%s", latest, serving)
        else:
            self.producer.send(self.topics.model_events, encode(message.to_dict()))
            flush_or_wait(self.producer, self.stop, "training completed")
            log.info(
                "training completed announced version=%s promoted=%s holdout_auc=%.4f",
                latest,
                serving,
                metadata["metrics"]["holdout_auc"],
            )
        if should_start_trial(latest, metadata, self.store.promotion_history()):
            self._start_trial(latest, metadata)

    def _start_trial(self, version: int, metadata: dict) -> None:
        """Put a version that passed the holdout gate on trial beside the champion."""
        trained_under = metadata[ROLLOUT_KEY]
        rollout = ChallengerStarted(
            version,
            self.store.require(self.store.current_version()),
            trained_under["mode"],
            float(trained_under.get("canary_fraction", 0.0)),
            observations_end(self.settings.common.kafka, self.topics.observations, f"{self.instance}-tally"),
        )
        start_trial(self.store, rollout, self.producer, self.topics, self.stop, self._registry())

    def _registry(self) -> Registry:
        return Registry(self.settings.common.tracking_uri, self.settings.registered_model)

    def _judge_rollout(self) -> None:
        """Read the rollout's paired tally and, once it is large enough, decide. A decision an
        operator took meanwhile (promote.py, rollback.py) ends the tally here too."""
        rollout = self.store.challenger()
        if rollout is None:
            if self._tally is not None:
                self._tally.close()
                self._tally = None
                metrics.ROLLOUT_LABELLED.set(0)
            return
        if DECISION_KEY in self.store.metadata(rollout.version):
            self._conclude(rollout, promoted=False, decided_by="", reason="", figures=None)  # finish a decision
            return
        if self._tally is None or self._tally.rollout != rollout:
            if self._tally is not None:
                self._tally.close()
            self._tally = PairedTally(
                self.settings.common.kafka, self.topics.observations, rollout, f"{self.instance}-tally"
            )
        try:
            self._tally.catch_up()
        except KafkaError as error:
            log.warning("rollout tally not read, trying again error=%r", error)
            return
        settings = self.settings.rollout
        labels, champion, challenger = self._tally.arrays()
        verdict = judge(labels, champion, challenger, settings.min_labelled, settings.margin)
        metrics.ROLLOUT_LABELLED.set(len(labels))
        if verdict.figures is not None:
            figures = verdict.figures
            metrics.ROLLOUT_LIVE_AUC.labels(role="champion").set(figures.champion["auc"])
            metrics.ROLLOUT_LIVE_AUC.labels(role="challenger").set(figures.challenger["auc"])
            for bound in ("estimate", "low", "high"):
                metrics.ROLLOUT_AUC_DIFFERENCE.labels(bound=bound).set(getattr(figures.auc_difference, bound))
        if verdict.decision == WAIT:
            return
        self._conclude(rollout, verdict.decision == "promote", "live judgement", verdict.reason, verdict.figures)

    def _conclude(
        self, rollout: ChallengerStarted, promoted: bool, decided_by: str, reason: str, figures: PairedFigures | None
    ) -> None:
        """Carry out a decision (or finish one a crash interrupted) and announce it."""
        decided = call_when_up(
            lambda: end_trial(
                self.store,
                rollout,
                promoted,
                decided_by,
                reason,
                figures,
                self._registry(),
                self.producer,
                self.topics,
                self.stop,
            ),
            self.settings.common.tracking_uri,
            self.stop,
        )
        metrics.ROLLOUT_DECISIONS.labels(decision="promoted" if decided.promoted else "rejected").inc()
        if decided.promoted:
            self._compile(rollout.version)
        if self._tally is not None:
            self._tally.close()
            self._tally = None

    def _compile(self, version: int) -> None:
        """Start building the version's compiled form, so predictors find it ready. One build at a
        time: while one runs (tens of seconds of CPU), newer versions are left to the predictors,
        which compile only the version they serve."""
        if self._build is not None and self._build.poll() is None:
            log.info("compiled form left to the predictors version=%s (a build is running)", version)
            return
        self._build = start_build(self.store.root, version)
        if self._build is not None:
            log.info("compiled form being built version=%s pid=%s", version, self._build.pid)

    def _rewind(self, records: list[Record]) -> None:
        for partition in {Partition(r.topic, r.partition) for r in records}:
            committed = self.consumer.committed(partition)
            self.consumer.seek(partition, committed if committed is not None else 0)


def run(settings: TrainerSettings, stop: threading.Event) -> int:
    return TrainerService(settings, stop).run()
