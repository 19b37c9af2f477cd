"""The predictor: consume app events, score them in micro-batches, answer, keep labelled
observations, ask for retraining every N observations, hot-swap promoted models.

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
from dataclasses import dataclass, field

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from utils import metrics
from utils.hot_swap import ModelSwapper
from utils.kafka_io import (
    BrokerHealth,
    assign_from_end,
    create_consumer,
    create_producer,
    flush_or_wait,
    is_fatal,
    poll_records,
    subscribe,
    wait_for_broker,
)
from utils.messages import (
    DeadLetter,
    MessageError,
    ModelRefused,
    Observation,
    Prediction,
    PredictionError,
    PredictionRequest,
    RetrainRequest,
    TrainingCompleted,
    control_from_dict,
    decode_object,
    encode,
    read_request_id,
)
from utils.metrics import serve_metrics
from utils.mlflow_source import MlflowModelSource
from utils.model_store import ModelStore, ModelStoreError
from utils.scoring import Scorer, load_scorer
from utils.serving_report import ServingReporter
from utils.settings import PredictorSettings

log = logging.getLogger(__name__)

CONTROL_POLL_INTERVAL_S = 0.1
LAG_CHECK_INTERVAL_S = 5.0
RETRY_BACKOFF_S = 1.0


@dataclass
class Triage:
    """A polled batch sorted by what must happen to each record."""

    requests: list[PredictionRequest] = field(default_factory=list)
    errors: list[PredictionError] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


def triage(records: list[ConsumerRecord], max_bytes: int) -> Triage:
    """Validate each record alone: one bad record never affects the others."""
    batch = Triage()
    for record in records:
        request_id = None
        try:
            payload = decode_object(record.value)
            request_id = read_request_id(payload)
            if len(record.value) > max_bytes:
                raise MessageError("too_large", f"the message has {len(record.value)} bytes, the limit is {max_bytes}")
            batch.requests.append(PredictionRequest.from_dict(payload))
        except MessageError as error:
            if request_id is None:
                batch.dead_letters.append(
                    DeadLetter.from_record(error, record.topic, record.partition, record.offset, record.value)
                )
            else:
                batch.errors.append(PredictionError(request_id, error.code, error.message))
    return batch


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
        kafka = self.settings.common.kafka
        scorer = self._load_current()
        if scorer is None:
            return 2
        wait_for_broker(kafka, self.topics, self.stop)
        self.producer = create_producer(kafka, self.instance)
        self.consumer = create_consumer(
            kafka, self.instance, self.settings.group_id, max_poll_records=self.settings.max_batch
        )
        self.control = create_consumer(kafka, f"{self.instance}-control", group_id=None)
        self.swapper = ModelSwapper(self.store, scorer, fetch=self.source.fetch if self.source else None)
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
            assign_from_end(self.control, self.topics.retrain)
            subscribe(self.consumer, self.topics.app_messages)
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
            self.consumer.close(autocommit=False)
            self.control.close(autocommit=False)
            self.producer.flush(timeout=10)
            self.producer.close(timeout=10)
            log.info("predictor stopped")
        return 0

    def _load_current(self) -> Scorer | None:
        if self.source is not None:
            try:
                version = self.source.champion_version()
                self.source.fetch(version)
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
        records = poll_records(self.consumer, self.settings.poll_timeout_ms)
        if not records:
            return
        try:
            self.handle_batch(records)
        except KafkaError as error:
            if is_fatal(error):
                raise
            log.warning("batch not acknowledged, replaying it records=%s error=%r", len(records), error)
            self._rewind(records)
            self.stop.wait(RETRY_BACKOFF_S)

    def handle_batch(self, records: list[ConsumerRecord]) -> None:
        started = time.perf_counter()
        batch = triage(records, self.settings.max_message_bytes)
        scorer = self.swapper.current
        futures = [
            self._send(self.topics.predictions, answer.to_dict(), answer.request_id)
            for answer in self._score(batch, scorer)
        ]
        for error in batch.errors:
            log.info("request refused request_id=%s code=%s reason=%s", error.request_id, error.code, error.message)
            metrics.REQUEST_ERRORS.labels(code=error.code).inc()
            futures.append(self._send(self.topics.predictions, error.to_dict(), error.request_id))
        for dead in batch.dead_letters:
            log.warning(
                "record dead-lettered code=%s partition=%s offset=%s reason=%s",
                dead.code,
                dead.partition,
                dead.offset,
                dead.reason,
            )
            metrics.DEAD_LETTERS.labels(code=dead.code).inc()
            futures.append(self._send(self.topics.dead_letter, dead.to_dict(), None))
        observations = [
            self._send(self.topics.observations, Observation(r.request_id, r.features, r.label).to_dict(), r.request_id)
            for r in batch.requests
            if r.label is not None
        ]
        flush_or_wait(self.producer, self.stop, "answers")
        for future in futures:
            future.get(timeout=0)  # raises the delivery error, if any
        self._request_retrains([future.get(timeout=0).offset for future in observations])
        self._commit(records)
        metrics.REQUESTS.inc(len(records))
        metrics.BATCH_SIZE.observe(len(records))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    def _score(self, batch: Triage, scorer: Scorer) -> list[Prediction]:
        """One LightGBM call for the whole batch. A scoring failure answers every request of the
        batch with an error instead of leaving it unanswered."""
        if not batch.requests:
            return []
        try:
            predictions, probabilities = scorer.score([request.features for request in batch.requests])
        except Exception as error:  # a model bug must not leave requests unanswered
            log.exception("scoring failed model_version=%s requests=%s", scorer.version, len(batch.requests))
            batch.errors.extend(
                PredictionError(r.request_id, "internal_error", f"scoring failed: {error!r}") for r in batch.requests
            )
            batch.requests = []
            return []
        self.reporter.for_version(scorer.version).add(probabilities, [r.label for r in batch.requests])
        metrics.PREDICTIONS.labels(model_version=str(scorer.version)).inc(len(batch.requests))
        return [
            Prediction(request.request_id, int(prediction), float(probability), scorer.version)
            for request, prediction, probability in zip(batch.requests, predictions, probabilities, strict=True)
        ]

    def _request_retrains(self, observation_offsets: list[int]) -> None:
        """One request each time the observations log (shared by every predictor) crosses a
        multiple of retrain_every: the count is global, so N instances do not retrain N times."""
        every = self.settings.retrain_every
        ends = [offset + 1 for offset in observation_offsets if (offset + 1) % every == 0]
        for end in ends:
            log.info("retrain requested observations_end_offset=%s", end)
            metrics.RETRAIN_REQUESTS.inc()
            self._send(self.topics.retrain, RetrainRequest(end, self.instance).to_dict(), None)
        if ends:
            flush_or_wait(self.producer, self.stop, "retrain request")

    def _commit(self, records: list[ConsumerRecord]) -> None:
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            offsets[partition] = OffsetAndMetadata(max(record.offset + 1, offsets.get(partition, (0,))[0]), "", -1)
        try:
            self.consumer.commit(offsets)
        except KafkaError as error:
            # The answers are out; after a rebalance another member may answer these again.
            log.warning("offset commit failed, records may be answered twice error=%r", error)

    def _rewind(self, records: list[ConsumerRecord]) -> None:
        first: dict[TopicPartition, int] = {}
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            first[partition] = min(record.offset, first.get(partition, record.offset))
        assigned = self.consumer.assignment()
        for partition, offset in first.items():
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
        for record in poll_records(self.control, 0):
            try:
                message = control_from_dict(decode_object(record.value))
            except MessageError as error:
                log.warning("unreadable control message offset=%s error=%s", record.offset, error)
                continue
            if isinstance(message, TrainingCompleted) and message.promoted:
                log.info("training completed, loading version=%s", message.version)
                self.swapper.request(message.version)

    def _send(self, topic: str, payload: dict, key: str | None):
        return self.producer.send(topic, value=encode(payload), key=key.encode("utf-8") if key else None)

    def _send_control(self, payload: dict) -> None:
        self._send(self.topics.retrain, payload, None)
        flush_or_wait(self.producer, self.stop, "control message")


def run(settings: PredictorSettings, stop: threading.Event) -> int:
    return PredictorService(settings, stop).run()
