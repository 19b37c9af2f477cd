"""What both of the predictor's loops share (predict/at_least_once.py, predict/exactly_once.py): the
serving parts, the work between batches (models loaded in the background, model events, the lag),
deciding a batch's outcome and sending it, and asking for retrains.

Each loop polls, calls the pure decisions of `predict/batch.py`, sends, and commits; they differ
only in how a batch's results and offsets become durable.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from predict.answers import AnswerEncoder
from predict.batch import PLAIN, AnswerFormat, BatchOutcome, decide
from predict.hot_swap import ModelSwapper
from predict.retrain_triggers import RetrainTriggers, ServingVersion, Trigger, TriggerSettings
from predict.schema_cache import SchemaCache
from predict.telemetry import Telemetry
from utils import metrics
from utils.kafka.health import serve_until_stopped
from utils.kafka.interface import Consumer, Delivery, FatalKafkaError, KafkaError, Partition, Producer, Record
from utils.messages.codec import MessageError, decode_object, encode, encode_fast
from utils.messages.events import (
    COUNT,
    ChallengerStarted,
    ModelRefused,
    PredictorEvent,
    RetrainRequested,
    RolloutDecided,
    TrainingCompleted,
    event_from_dict,
    serving_version,
)
from utils.model_store import ModelStore, ModelStoreError
from utils.schema_registry import wire
from utils.scoring import Scorer
from utils.settings import PredictorSettings

log = logging.getLogger(__name__)

MODEL_EVENTS_POLL_INTERVAL_S = 0.1
LAG_CHECK_INTERVAL_S = 5.0
RETRY_BACKOFF_S = 1.0
DRAIN_TIMEOUT_S = 10.0
# How often the drift, quality and time triggers are asked, on their own thread.
TRIGGER_CHECK_INTERVAL_S = 1.0


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
        self._unreplayed: dict[Partition, int] = {}  # offsets to read again from, not sought yet
        self._from_committed: dict[Partition, int] = {}  # read again from the group's commit (else this)
        # The end of the observations log as far as this predictor knows it (-1: not known yet).
        self.observations_end = -1
        # The newest version trained, served or not (the trainer drops requests made before a newer one).
        self.newest_version_known = max(self.swapper.current.version, self.swapper.store.latest_version() or 0)
        trigger_settings = TriggerSettings.of(self.settings)
        self.triggers: TriggerJudge | None = None
        if trigger_settings.any_on:
            serving_now = serving_version_of(self.swapper.store, self.swapper.current)
            self.triggers = TriggerJudge(
                RetrainTriggers(trigger_settings, serving_now, time.monotonic()), self.swapper, self.stop
            )

    def serve(self) -> None:
        """Serve until stopped, then drain."""

        def step() -> bool:
            try:
                self.between_batches()
                self.serve_once()
            except KafkaError as error:
                # The loops handle a batch's failures themselves; this is what fails around them
                # (a rewind, a model-events read) while the cluster fails over: tried again.
                if isinstance(error, FatalKafkaError):
                    raise
                log.warning("serving step failed, trying again error=%r", error)
                self.stop.wait(RETRY_BACKOFF_S)
            return True

        if self.triggers is not None:
            self.triggers.start()
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
        if self.triggers is not None:
            self.triggers.observations_end = max(self.observations_end, 0)
            for trigger in self.triggers.fired():
                self.ask_for_retrain(trigger)

    def ask_for_retrain(self, trigger: Trigger) -> None:
        """Send the retrain request of a drift, quality or time trigger."""
        newest_version_known = max(self.newest_version_known, trigger.evidence["serving_version"])
        if self.observations_end < 0:
            self.observations_end = self._observations_log_end()
        log.info(
            "retrain requested reason=%s observations_end_offset=%s newest_version_known=%s %s",
            trigger.reason,
            self.observations_end,
            newest_version_known,
            " ".join(f"{name}={value}" for name, value in trigger.evidence.items()),
        )
        metrics.RETRAIN_REQUESTS.inc()
        metrics.RETRAIN_TRIGGERS.labels(reason=trigger.reason).inc()
        request = RetrainRequested(
            self.observations_end, self.serving.instance, trigger.reason, trigger.evidence, newest_version_known
        )
        self.send_own(request)

    def _observations_log_end(self) -> int:
        """Before this predictor's first observation is acknowledged: the log's end, from the broker."""
        partition = Partition(self.topics.observations, 0)
        try:
            return self.consumer.end_offsets([partition])[partition]
        except KafkaError as error:
            log.warning("end of the observations log unknown, asking from 0 error=%r", error)
            return 0

    def saw_observations(self, offsets: Sequence[int]) -> None:
        """Offsets of observations the broker acknowledged (the triggers' end offset)."""
        if offsets:
            self.observations_end = max(self.observations_end, max(offsets) + 1)

    def read_model_events(self) -> None:
        """Follow what the trainer and operators announce: rollouts, new serving versions."""
        for record in self.serving.model_events.poll(0):
            try:
                event = event_from_dict(decode_object(record.value))
            except MessageError as error:
                log.warning("unreadable model event offset=%s error=%s", record.offset, error)
                continue
            if isinstance(event, TrainingCompleted):  # promoted or not: the triggers' requests say they knew it
                self.newest_version_known = max(self.newest_version_known, event.version)
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
        if self.triggers is not None and outcome.scored is not None:
            scored = outcome.scored
            self.triggers.add(
                scored.model_version,
                [request.features for request in scored.requests],
                scored.probabilities,
                [request.label for request in scored.requests],
            )
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
        """Send one retrain request per end offset (the count trigger; the others: `ask_for_retrain`)."""
        deliveries = []
        for end in ends:
            log.info("retrain requested reason=count observations_end_offset=%s", end)
            metrics.RETRAIN_REQUESTS.inc()
            metrics.RETRAIN_TRIGGERS.labels(reason=COUNT).inc()
            request = RetrainRequested(end, self.serving.instance, COUNT, {"every": self.settings.retrain_every})
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
        """Read these partitions again from these offsets (those still assigned here). A seek that
        fails is tried again before the next poll: reading on from where the batch ended would
        skip what it did not make durable."""
        for partition, offset in replay.items():
            self._unreplayed[partition] = min(offset, self._unreplayed.get(partition, offset))
        self._replay()

    def rewind_to_committed(self, replay: dict[Partition, int]) -> None:
        """Read these partitions again from the group's committed offsets (from `replay` where it
        has none): after a transaction in doubt, whose commit says whether its batch landed. The
        exactly-once consumer reads committed records only, and so asks for stable offsets: one
        that a transaction still ending would change is waited for (KIP-447)."""
        self._from_committed.update(replay)
        self._replay()

    def _replay(self) -> None:
        assigned = self.consumer.assignment()
        for partition, fallback in list(self._from_committed.items()):
            if partition in assigned:
                committed = self.consumer.committed(partition)
                offset = fallback if committed is None else committed
                self._unreplayed[partition] = min(offset, self._unreplayed.get(partition, offset))
            del self._from_committed[partition]
        for partition, offset in list(self._unreplayed.items()):
            if partition in assigned:  # one a rebalance took: its next owner starts from its commit
                self.consumer.seek(partition, offset)
            del self._unreplayed[partition]

    def poll(self, timeout_s: float) -> list[Record]:
        if self._unreplayed or self._from_committed:
            self._replay()
        started = time.perf_counter()
        records = self.consumer.poll(timeout_s)
        metrics.STAGE_SECONDS.labels(stage="poll").inc(time.perf_counter() - started)
        return records


class TriggerJudge:
    """Asks the retrain triggers once a second on a thread of its own, so that a drift judgement
    (~20 ms of PSI) never holds up a batch; the loop feeds them and sends what fired (sending
    stays on the loop's thread: with exactly-once, every send belongs to its transactions)."""

    def __init__(self, triggers: RetrainTriggers, swapper: ModelSwapper, stop: threading.Event):
        self.triggers = triggers
        self.swapper = swapper
        self.stop = stop
        self.observations_end = 0  # set by the loop; an int, read whole by this thread
        self._fired: queue.Queue[Trigger] = queue.Queue()
        self._thread = threading.Thread(target=self._judge_forever, name="retrain-triggers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(
        self, version: int, records: Sequence[Mapping[str, Any]], scores: np.ndarray, labels: Sequence[int | None]
    ) -> None:
        self.triggers.add(version, records, scores, labels)

    def fired(self) -> list[Trigger]:
        """The triggers that fired since the last call."""
        if self._fired.empty():  # nearly always: skip the exception below
            return []
        found = []
        while True:
            try:
                found.append(self._fired.get_nowait())
            except queue.Empty:
                return found

    def judge_once(self) -> None:
        current = self.swapper.current  # one reference read: the loop swaps it whole
        if current.version != self.triggers.serving.version:
            self.triggers.serve(serving_version_of(self.swapper.store, current))
        trigger = self.triggers.due(time.monotonic(), self.observations_end)
        if trigger is not None:
            self._fired.put(trigger)

    def _judge_forever(self) -> None:
        while not self.stop.wait(TRIGGER_CHECK_INTERVAL_S):
            try:
                self.judge_once()
            except Exception as error:  # a trigger's bug must not stop the serving, nor the next judgements
                log.error("retrain triggers not judged error=%r", error)


def serving_version_of(store: ModelStore, scorer: Scorer) -> ServingVersion:
    """What the triggers judge a version against: its reference rows and scores, and from its
    metadata its holdout log loss and the observations it was trained on (none if unreadable)."""
    reference = scorer.reference
    try:
        metadata = store.metadata(scorer.version)
        holdout = metadata.metrics
        trained_to = metadata.observations_end_offset
    except ModelStoreError as error:
        log.warning("metadata unreadable, the quality trigger waits version=%s error=%s", scorer.version, error)
        holdout, trained_to = {}, 0
    return ServingVersion(
        scorer.version,
        scorer.spec,
        pd.DataFrame.from_records(list(reference.records)) if reference is not None else pd.DataFrame(),
        reference.scores if reference is not None else np.empty(0),
        holdout.get("holdout_log_loss"),
        holdout.get("holdout_auc"),
        trained_to,
    )
