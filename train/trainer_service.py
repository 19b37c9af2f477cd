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
import threading
import time
from collections.abc import Mapping

import pandas as pd
from kafka import TopicPartition
from kafka.errors import KafkaError

from train.drift import PSI_WARNING, drifted, feature_drift, prediction_shift
from train.pipeline import train_version
from train.tracking import Tracker
from utils import metrics
from utils.data import frame_to_records, load_test, load_train, split_test
from utils.kafka_io import (
    BrokerHealth,
    create_consumer,
    create_producer,
    flush_or_wait,
    is_fatal,
    poll_records,
    subscribe,
    wait_for_broker,
)
from utils.messages import (
    FEATURE_FIELDS,
    MessageError,
    Observation,
    RetrainRequest,
    TrainingCompleted,
    control_from_dict,
    decode_object,
    encode,
)
from utils.metrics import serve_metrics
from utils.model_store import ModelStore
from utils.scoring import load_scorer
from utils.settings import KafkaSettings, TrainerSettings
from utils.shutdown import StopRequested

log = logging.getLogger(__name__)

OBSERVATION_READ_TIMEOUT_MS = 60000
MIN_DRIFT_ROWS = 200  # PSI on fewer rows is mostly noise


def read_observations(kafka: KafkaSettings, topic: str, end_offset: int, max_count: int) -> list[Observation]:
    """The last `max_count` valid observations before `end_offset`, once per request id (a replayed
    batch may have written one twice). Raises KafkaError if the log cannot be read that far."""
    consumer = create_consumer(
        kafka, "trainer-observations", group_id=None, consumer_timeout_ms=OBSERVATION_READ_TIMEOUT_MS
    )
    partition = TopicPartition(topic, 0)
    by_request: dict[str, Observation] = {}
    next_offset = 0
    try:
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        next_offset = max(consumer.position(partition), end_offset - max_count)
        consumer.seek(partition, next_offset)
        for record in consumer if next_offset < end_offset else ():
            if record.offset >= end_offset:
                break
            next_offset = record.offset + 1
            try:
                observation = Observation.from_dict(decode_object(record.value))
                by_request[observation.request_id] = observation
            except MessageError as error:
                log.warning("skipping unreadable observation offset=%s error=%s", record.offset, error)
            if next_offset >= end_offset:
                break
    finally:
        consumer.close(autocommit=False)
    if next_offset < end_offset:
        raise KafkaError(f"read {topic} up to offset {next_offset} of {end_offset} before timing out")
    return list(by_request.values())


def observations_frame(observations: list[Observation]) -> pd.DataFrame:
    rows = [{**{name: obs.features[name] for name in FEATURE_FIELDS}, "label": obs.label} for obs in observations]
    frame = pd.DataFrame(rows, columns=[*FEATURE_FIELDS, "label"])
    # A null category is a missing value, spelt as in the census files.
    return frame.fillna("?") if len(frame) else frame


def auc_gate(champion_metrics: Mapping[str, float], tolerance: float):
    """Champion/challenger: promote unless the holdout AUC drops by more than `tolerance`."""
    champion_auc = float(champion_metrics["holdout_auc"])

    def decide(metrics: Mapping[str, float]) -> tuple[bool, str]:
        challenger_auc = float(metrics["holdout_auc"])
        promoted = challenger_auc >= champion_auc - tolerance
        verdict = "not worse" if promoted else "worse"
        return promoted, (
            f"holdout AUC {challenger_auc:.4f} vs champion {champion_auc:.4f}: {verdict} than the tolerance {tolerance}"
        )

    return decide


class TrainerService:
    def __init__(self, settings: TrainerSettings, stop: threading.Event):
        self.settings = settings
        self.topics = settings.common.topics
        self.stop = stop
        self.store = ModelStore(settings.common.model_store)
        self.instance = f"trainer-{socket.gethostname()}-{os.getpid()}"

    def run(self) -> int:
        if self.store.current_version() is None:
            log.error("no model version in %s: run `python initialize.py` first", self.store.root)
            return 2
        kafka = self.settings.common.kafka
        wait_for_broker(kafka, self.topics, self.stop)  # first: wrong credentials fail at once
        self.base_training = load_train()
        _, self.holdout = split_test(load_test())
        self.tracker = Tracker(
            self.settings.common.tracking_uri, self.settings.experiment, self.settings.registered_model
        )
        serve_metrics(self.settings.metrics_port)
        self.producer = create_producer(kafka, self.instance)
        # A retrain may outlast the default 5-minute poll interval; the group must not evict us.
        self.consumer = create_consumer(
            kafka, self.instance, self.settings.group_id, max_poll_records=100, max_poll_interval_ms=3_600_000
        )
        try:
            subscribe(self.consumer, self.topics.retrain)
            self.store.remove_incomplete()
            self.finish_latest()
            log.info(
                "trainer ready topic=%s group=%s hyper=%s max_evals=%s",
                self.topics.retrain,
                self.settings.group_id,
                self.settings.tuning.hyper,
                self.settings.tuning.max_evals,
            )
            self._serve()
        finally:
            self.consumer.close(autocommit=False)
            self.producer.flush(timeout=10)
            self.producer.close(timeout=10)
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
        records = poll_records(self.consumer, 1000)
        requests = []
        for record in records:
            try:
                message = control_from_dict(decode_object(record.value))
            except MessageError as error:
                log.warning("unreadable message on %s offset=%s error=%s", self.topics.retrain, record.offset, error)
                continue
            if isinstance(message, RetrainRequest):
                requests.append(message)
        if not records:
            return True
        try:
            if requests:
                self.retrain(max(r.observations_end_offset for r in requests), coalesced=len(requests))
            self.consumer.commit()
        except StopRequested:
            log.info("retrain abandoned: stopping; the request stays uncommitted and will be redone")
            return False
        except KafkaError as error:
            if is_fatal(error):
                raise
            log.warning("retrain not acknowledged, will replay error=%r", error)
            self._rewind(records)
        return True

    def retrain(self, end_offset: int, coalesced: int = 1) -> None:
        latest = self.store.latest_version()
        latest_metadata = self.store.metadata(latest)
        if latest_metadata.get("observations_end_offset", 0) >= end_offset:
            log.info("retrain already covered end_offset=%s by_version=%s", end_offset, latest)
            self.finish_latest()
            return
        champion = self.store.current_version()
        champion_metadata = self.store.metadata(champion)
        observations = read_observations(
            self.settings.common.kafka, self.topics.observations, end_offset, self.settings.max_observations
        )
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
                "observations_end_offset": end_offset,
                "new_rows": len(new_rows),
                "replaces_version": champion,
                "replaces_mlflow_run_id": champion_metadata.get("mlflow_run_id", ""),
            },
            warm_start=champion_metadata.get("params"),
            should_stop=self.stop.is_set,
            promotion_gate=auc_gate(champion_metadata["metrics"], self.settings.promotion_tolerance),
            extra_metrics=drift,
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
        """Promote (if its gate said so) and announce the newest version. Idempotent: safe to repeat
        after a crash at any point. A version that was current once is not promoted again, so a
        rollback survives a trainer restart."""
        latest = self.store.latest_version()
        metadata = self.store.metadata(latest)
        if metadata.get("promoted", True) and latest not in self.store.promotion_history():
            self.store.set_current(latest)
        serving = self.store.current_version() == latest
        message = TrainingCompleted(
            latest, serving, metadata["metrics"], metadata["trained_rows"], metadata.get("observations_end_offset", 0)
        )
        self.producer.send(self.topics.retrain, value=encode(message.to_dict()))
        flush_or_wait(self.producer, self.stop, "training completed")
        log.info(
            "training completed announced version=%s promoted=%s holdout_auc=%.4f",
            latest,
            serving,
            metadata["metrics"]["holdout_auc"],
        )

    def _rewind(self, records) -> None:
        for partition in {TopicPartition(r.topic, r.partition) for r in records}:
            committed = self.consumer.committed(partition)
            self.consumer.seek(partition, committed if committed is not None else 0)


def run(settings: TrainerSettings, stop: threading.Event) -> int:
    return TrainerService(settings, stop).run()
