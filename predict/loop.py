"""What both of the predictor's loops share (predict/at_least_once.py, predict/exactly_once.py): the
serving parts, the work between batches (models loaded in the background, model events, the lag),
deciding a batch's outcome and sending it, and asking for retrains.

Each loop polls, calls the pure decisions of `predict/batch.py`, sends, and commits; they differ
only in how a batch's results and offsets become durable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from predict.answers import AnswerEncoder
from predict.batch import PLAIN, AnswerFormat, BatchOutcome, decide
from predict.hot_swap import ModelSwapper
from predict.schema_cache import SchemaCache
from predict.telemetry import Telemetry
from utils import metrics
from utils.kafka.health import serve_until_stopped
from utils.kafka.interface import Consumer, Delivery, Partition, Producer, Record
from utils.messages.codec import MessageError, decode_object, encode, encode_fast
from utils.messages.events import (
    ChallengerStarted,
    ModelRefused,
    PredictorEvent,
    RetrainRequested,
    RolloutDecided,
    event_from_dict,
    serving_version,
)
from utils.schema_registry import wire
from utils.settings import PredictorSettings

log = logging.getLogger(__name__)

MODEL_EVENTS_POLL_INTERVAL_S = 0.1
LAG_CHECK_INTERVAL_S = 5.0
RETRY_BACKOFF_S = 1.0
DRAIN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Serving:
    """The parts a serving loop works with, built by predict/service.py."""

    settings: PredictorSettings
    instance: str  # this process's name in logs, client ids and the messages it sends
    consumer: Consumer  # app_messages, in the predictors' group
    producer: Producer
    model_events: Consumer  # the model-events topic, from its end
    swapper: ModelSwapper
    telemetry: Telemetry
    schemas: SchemaCache  # the registry's schemas of wire-format requests
    stop: threading.Event


class ServingLoop:
    def __init__(self, serving: Serving):
        self.serving = serving
        self.settings = serving.settings
        self.topics = serving.settings.common.topics
        self.consumer = serving.consumer
        self.producer = serving.producer
        self.swapper = serving.swapper
        self.telemetry = serving.telemetry
        self.stop = serving.stop
        self.schemas = serving.schemas
        self.answers = AnswerEncoder(serving.schemas)
        self._next_events_poll = 0.0
        self._next_lag_check = 0.0

    def serve(self) -> None:
        """Serve until stopped, then drain."""

        def step() -> bool:
            self.between_batches()
            self.serve_once()
            return True

        serve_until_stopped(self.settings.common.kafka.bootstrap_servers, self.stop, step)
        self.drain()

    def serve_once(self) -> None:
        raise NotImplementedError

    def drain(self) -> None:
        """On a clean stop: make durable what can be within DRAIN_TIMEOUT_S."""

    def between_batches(self) -> None:
        for result in self.swapper.poll_loaded():
            self.telemetry.loaded(result)
            if result.error is not None:
                self.send_own(ModelRefused(result.version, result.error, self.serving.instance))
        now = time.monotonic()
        if now >= self._next_lag_check:
            self.telemetry.lag(self.consumer)
            self._next_lag_check = now + LAG_CHECK_INTERVAL_S
        if now >= self._next_events_poll:
            self.read_model_events()
            self._next_events_poll = time.monotonic() + MODEL_EVENTS_POLL_INTERVAL_S

    def read_model_events(self) -> None:
        """Follow what the trainer and operators announce: rollouts, new serving versions."""
        for record in self.serving.model_events.poll(0):
            try:
                event = event_from_dict(decode_object(record.value))
            except MessageError as error:
                log.warning("unreadable model event offset=%s error=%s", record.offset, error)
                continue
            if isinstance(event, ChallengerStarted):
                self.swapper.start_rollout(event)
                self.telemetry.roles_changed()
            elif isinstance(event, RolloutDecided):
                if self.swapper.end_rollout(event.version, event.promoted):
                    self.telemetry.swapped(event.version)
                self.telemetry.roles_changed()
            elif (version := serving_version(event)) is not None:
                log.info("new serving version announced, loading version=%s event=%s", version, event.EVENT)
                self.swapper.request(version)

    def decide(self, records: list[Record]) -> BatchOutcome:
        """The batch's outcome from the serving model (and the challenger of a rollout), recorded."""
        schema_ids = {wire.schema_id_of(r.value) for r in records if r.value is not None and wire.is_framed(r.value)}
        outcome = decide(
            records,
            self.swapper.current,
            self.settings.max_message_bytes,
            self.settings.explain_top,
            self.swapper.serving_challenger(),
            self.schemas.lookup(schema_ids) if schema_ids else None,
        )
        self.telemetry.outcome(outcome)
        return outcome

    def send_outcome(self, outcome: BatchOutcome) -> tuple[list[Delivery], list[Delivery]]:
        """Send answers, error answers and dead letters (first list) and observations (second)."""
        topics = self.topics
        answer_formats = outcome.answer_formats or [PLAIN] * len(outcome.answers)
        error_formats = outcome.error_formats or [PLAIN] * len(outcome.errors)
        results = [
            self.answer(answer.to_dict(), answer.request_id, answer_format)
            for answer, answer_format in zip(outcome.answers, answer_formats, strict=True)
        ]
        results += [
            self.answer(error.to_dict(), error.request_id, error_format)
            for error, error_format in zip(outcome.errors, error_formats, strict=True)
        ]
        results += [self.send(topics.dead_letter, dead.to_dict(), None) for dead in outcome.dead_letters]
        observations = [
            self.producer.send(topics.observations, encode_fast(o.to_dict()), o.request_id.encode("utf-8"))
            for o in outcome.observations
        ]
        return results, observations

    def ask_for_retrains(self, ends: Sequence[int]) -> list[Delivery]:
        """Send one retrain request per end offset (the one place predictors ask for retrains)."""
        deliveries = []
        for end in ends:
            log.info("retrain requested observations_end_offset=%s", end)
            metrics.RETRAIN_REQUESTS.inc()
            request = RetrainRequested(end, self.serving.instance)
            deliveries.append(self.send(self.topics.retrain, request.to_dict(), None))
        return deliveries

    def send_own(self, event: PredictorEvent) -> None:
        """A message of the predictor's own (not caused by a batch), sent between batches."""
        raise NotImplementedError

    def answer(self, payload: dict, request_id: str, answer_format: AnswerFormat) -> Delivery:
        value = self.answers.encode(payload, answer_format)
        return self.producer.send(self.topics.predictions, value, request_id.encode("utf-8"))

    def send(self, topic: str, payload: dict, key: str | None) -> Delivery:
        return self.producer.send(topic, encode(payload), key.encode("utf-8") if key else None)

    def rewind(self, replay: dict[Partition, int]) -> None:
        """Read these partitions again from these offsets (those still assigned here)."""
        assigned = self.consumer.assignment()
        for partition, offset in replay.items():
            if partition in assigned:
                self.consumer.seek(partition, offset)

    def poll(self, timeout_s: float) -> list[Record]:
        started = time.perf_counter()
        records = self.consumer.poll(timeout_s)
        metrics.STAGE_SECONDS.labels(stage="poll").inc(time.perf_counter() - started)
        return records
