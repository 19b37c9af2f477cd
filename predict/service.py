"""The predictor: consume app events, score them in micro-batches, answer, keep labelled
observations, ask for retraining every N observations, hot-swap promoted models.

The loop only polls, calls the pure decisions of `predict/batch.py`, sends, and commits.
At-least-once: a batch's offsets are committed only after every answer, dead letter, observation
and retrain request it caused has been acknowledged by the broker. A crash before that replays the
batch; the sample app drops repeated answers by request id.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from predict.batch import BatchOutcome, decide, retrain_ends
from predict.hot_swap import ModelSwapper
from predict.model_source import MlflowModelSource
from predict.reporting import ServingReporter
from utils import metrics
from utils.kafka.clients import create_consumer, create_producer
from utils.kafka.health import BrokerHealth, flush_or_wait
from utils.kafka.interface import (
    CommitFailed,
    Consumer,
    ConsumerOptions,
    Delivery,
    FatalKafkaError,
    KafkaError,
    Producer,
    ProducerOptions,
    Record,
)
from utils.kafka.offsets import commit_offsets, replay_offsets
from utils.kafka.reading import assign_from_end
from utils.kafka.topics import wait_for_broker
from utils.messages import ModelRefused, RetrainRequest, control_from_dict, decode_object, encode, serving_version
from utils.metrics import serve_metrics
from utils.model_store import ModelStore, ModelStoreError
from utils.schema import MessageError
from utils.scoring import Scorer, load_scorer
from utils.settings import PredictorSettings
from utils.tracking import call_when_up

log = logging.getLogger(__name__)

CONTROL_POLL_INTERVAL_S = 0.1
LAG_CHECK_INTERVAL_S = 5.0
RETRY_BACKOFF_S = 1.0


class PredictorService:
    def __init__(self, settings: PredictorSettings, stop: threading.Event):
        self.settings = settings
        self.topics = settings.common.topics
        self.stop = stop
        self.store = ModelStore(settings.common.model_store)
        # With --model-source mlflow the store is only a local cache of registry downloads.
        self.source = (
            MlflowModelSource(settings.common.tracking_uri, settings.registered_model, self.store)
            if settings.model_source == "mlflow"
            else None
        )
        self.instance = f"predictor-{socket.gethostname()}-{os.getpid()}"
        self._next_control_poll = 0.0
        self._next_lag_check = 0.0

    def run(self) -> int:
        """Serve until stopped; 2 if there is no model that can serve."""
        kafka = self.settings.common.kafka
        scorer = self._load_current()
        if scorer is None:
            return 2
        wait_for_broker(kafka, self.topics, self.stop)
        self.producer: Producer = create_producer(kafka, ProducerOptions(self.instance))
        self.consumer: Consumer = create_consumer(
            kafka,
            ConsumerOptions(self.instance, self.settings.group_id, max_poll_records=self.settings.max_batch),
        )
        self.control: Consumer = create_consumer(kafka, ConsumerOptions(f"{self.instance}-control"))
        self.swapper = ModelSwapper(
            self.store,
            scorer,
            fetch=self.source.fetch if self.source else None,
            tracking_uri=self.settings.common.tracking_uri,
        )
        metrics.MODEL_VERSION.set(scorer.version)
        serve_metrics(self.settings.metrics_port)
        self.reporter = ServingReporter(
            self.settings.common.tracking_uri or None,
            self.settings.experiment,
            self.instance,
            self.settings.live_window,
            self.settings.report_interval_s,
        )
        self.reporter.start()
        try:
            assign_from_end(self.control, self.topics.model_events)
            self.consumer.subscribe(self.topics.app_messages)
            log.info(
                "predictor ready model_version=%s topic=%s group=%s retrain_every=%s",
                scorer.version,
                self.topics.app_messages,
                self.settings.group_id,
                self.settings.retrain_every,
            )
            self._serve()
        finally:
            self.reporter.close()
            self.swapper.close()
            self.consumer.close()
            self.control.close()
            self.producer.close(timeout_s=10)
            log.info("predictor stopped")
        return 0

    def _load_current(self) -> Scorer | None:
        if self.source is not None:
            try:
                source = self.source
                champion = call_when_up(source.champion_version, self.settings.common.tracking_uri, self.stop)
                call_when_up(lambda: source.fetch(champion), self.settings.common.tracking_uri, self.stop)
                version: int | None = champion
            except ModelStoreError as error:
                log.error("no model to serve from MLflow: %s", error)
                return None
        else:
            version = self.store.current_version()
        if version is None:
            log.error("no model version in %s: run `python initialize.py` first", self.store.root)
            return None
        try:
            return load_scorer(self.store, version)
        except ModelStoreError as error:
            log.error("the current model version cannot serve: %s (roll back to another version)", error)
            return None

    def _serve(self) -> None:
        with BrokerHealth(self.settings.common.kafka.bootstrap_servers) as health:
            while not self.stop.is_set():
                health.check()
                self._serve_once()

    def _serve_once(self) -> None:
        for result in self.swapper.poll_loaded():
            if result.error is not None:
                metrics.MODELS_REFUSED.inc()
                self._send_control(ModelRefused(result.version, result.error, self.instance).to_dict())
            else:
                metrics.MODEL_SWAPS.inc()
                metrics.MODEL_VERSION.set(result.version)
        if time.monotonic() >= self._next_lag_check:
            self._update_lag()
            self._next_lag_check = time.monotonic() + LAG_CHECK_INTERVAL_S
        if time.monotonic() >= self._next_control_poll:
            self._read_control_messages()
            self._next_control_poll = time.monotonic() + CONTROL_POLL_INTERVAL_S
        records = self.consumer.poll(self.settings.poll_timeout_ms / 1000)
        if not records:
            return
        try:
            self.handle_batch(records)
        except KafkaError as error:
            if isinstance(error, FatalKafkaError):
                raise
            log.warning("batch not acknowledged, replaying it records=%s error=%r", len(records), error)
            self._rewind(records)
            self.stop.wait(RETRY_BACKOFF_S)

    def handle_batch(self, records: list[Record]) -> None:
        """Decide, send every result, wait for the acknowledgements, ask for due retrains, commit."""
        started = time.perf_counter()
        outcome = decide(records, self.swapper.current, self.settings.max_message_bytes)
        self._record_outcome(outcome)
        topics = self.topics
        deliveries = [self._send(topics.predictions, answer.to_dict(), answer.request_id) for answer in outcome.answers]
        deliveries += [self._send(topics.predictions, error.to_dict(), error.request_id) for error in outcome.errors]
        deliveries += [self._send(topics.dead_letter, dead.to_dict(), None) for dead in outcome.dead_letters]
        observations = [self._send(topics.observations, o.to_dict(), o.request_id) for o in outcome.observations]
        flush_or_wait(self.producer, self.stop, "answers")
        for delivery in deliveries:
            delivery.result(timeout_s=0)  # raises the delivery error, if any
        ends = retrain_ends(
            [delivery.result(timeout_s=0).offset for delivery in observations], self.settings.retrain_every
        )
        for end in ends:
            log.info("retrain requested observations_end_offset=%s", end)
            metrics.RETRAIN_REQUESTS.inc()
            self._send(topics.retrain, RetrainRequest(end, self.instance).to_dict(), None)
        if ends:
            flush_or_wait(self.producer, self.stop, "retrain request")
        try:
            self.consumer.commit(commit_offsets(records))
        except CommitFailed as error:
            # The answers are out; after a rebalance another member may answer these again.
            log.warning("offset commit failed, records may be answered twice error=%r", error)
        metrics.REQUESTS.inc(len(records))
        metrics.BATCH_SIZE.observe(len(records))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    def _record_outcome(self, outcome: BatchOutcome) -> None:
        """Logs, metrics and live quality of a batch's outcome."""
        if outcome.scoring_failure is not None:
            log.error("scoring failed model_version=%s error=%s", self.swapper.current.version, outcome.scoring_failure)
        if outcome.scored is not None:
            scored = outcome.scored
            labels = [request.label for request in scored.requests]
            self.reporter.for_version(scored.model_version).add(scored.probabilities, labels)
            metrics.PREDICTIONS.labels(model_version=str(scored.model_version)).inc(len(scored.requests))
        for error in outcome.errors:
            log.info("request refused request_id=%s code=%s reason=%s", error.request_id, error.code, error.message)
            metrics.REQUEST_ERRORS.labels(code=error.code).inc()
        for dead in outcome.dead_letters:
            log.warning(
                "record dead-lettered code=%s partition=%s offset=%s reason=%s",
                dead.code,
                dead.partition,
                dead.offset,
                dead.reason,
            )
            metrics.DEAD_LETTERS.labels(code=dead.code).inc()

    def _rewind(self, records: list[Record]) -> None:
        assigned = self.consumer.assignment()
        for partition, offset in replay_offsets(records).items():
            if partition in assigned:
                self.consumer.seek(partition, offset)

    def _update_lag(self) -> None:
        assigned = list(self.consumer.assignment())
        if not assigned:
            return
        try:
            ends = self.consumer.end_offsets(assigned)
            metrics.CONSUMER_LAG.set(sum(max(0, ends[p] - self.consumer.position(p)) for p in assigned))
        except KafkaError as error:
            log.debug("consumer lag not measured error=%r", error)

    def _read_control_messages(self) -> None:
        for record in self.control.poll(0):
            try:
                message = control_from_dict(decode_object(record.value))
            except MessageError as error:
                log.warning("unreadable control message offset=%s error=%s", record.offset, error)
                continue
            version = serving_version(message)
            if version is not None:
                log.info("new serving version announced, loading version=%s event=%s", version, message.event)
                self.swapper.request(version)

    def _send(self, topic: str, payload: dict, key: str | None) -> Delivery:
        return self.producer.send(topic, encode(payload), key.encode("utf-8") if key else None)

    def _send_control(self, payload: dict) -> None:
        self._send(self.topics.retrain, payload, None)
        flush_or_wait(self.producer, self.stop, "control message")


def run(settings: PredictorSettings, stop: threading.Event) -> int:
    return PredictorService(settings, stop).run()
