"""The predictor: consume app events, score them in micro-batches, answer, keep labelled
observations, ask for retraining every N observations, hot-swap promoted models.

The loop only polls, calls the pure decisions of `predict/batch.py`, sends, and commits.
It is pipelined: it goes on polling and scoring while the broker acknowledges earlier batches
(`predict/in_flight.py` bounds how much may wait). At-least-once: a batch's offsets are committed
only after every answer, dead letter, observation and retrain request it caused, and every batch
before it, has been acknowledged. A crash before that replays the batch; the sample app drops
repeated answers by request id.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from predict.batch import BatchOutcome, decide, retrain_ends, retrain_ends_in_transaction
from predict.compiled_switch import CompiledSwitch
from predict.hot_swap import LoadResult, ModelSwapper
from predict.in_flight import InFlight, SentBatch, offsets_to_commit
from predict.model_source import MlflowModelSource
from predict.reporting import ServingReporter
from utils import metrics
from utils.compiled_cache import CompiledCache
from utils.data import frame_to_records, load_test, split_test
from utils.event_history import recent_events, rollout_in_progress
from utils.kafka.clients import create_consumer, create_producer, create_transactional_producer
from utils.kafka.health import BrokerHealth, flush_or_wait
from utils.kafka.interface import (
    CommitFailed,
    Consumer,
    ConsumerOptions,
    Delivery,
    FatalKafkaError,
    KafkaError,
    KafkaTimeout,
    Partition,
    Producer,
    ProducerOptions,
    Record,
    TransactionAborted,
    TransactionalProducer,
)
from utils.kafka.offsets import commit_offsets, replay_offsets
from utils.kafka.reading import assign_from_end
from utils.kafka.topics import wait_for_broker
from utils.messages.codec import MessageError, decode_object, encode
from utils.messages.events import (
    ChallengerStarted,
    ModelRefused,
    RetrainRequested,
    RolloutDecided,
    event_from_dict,
    serving_version,
)
from utils.messages.requests import CHALLENGER, CHAMPION
from utils.metrics import serve_metrics
from utils.mlflow_outage import call_when_up
from utils.model_store import ModelStore, ModelStoreError
from utils.scoring import Scorer, load_scorer
from utils.settings import PredictorSettings

log = logging.getLogger(__name__)

CONTROL_POLL_INTERVAL_S = 0.1
LAG_CHECK_INTERVAL_S = 5.0
RETRY_BACKOFF_S = 1.0
# While batches are in flight, a poll waits at most this long, so acknowledged ones commit promptly.
IN_FLIGHT_POLL_TIMEOUT_S = 0.002
ACK_WAIT_LOG_EVERY_S = 5.0
DRAIN_TIMEOUT_S = 10.0
# A rebalance waits for this member: a short wait, what is left is read again by the next owner.
REVOCATION_FLUSH_TIMEOUT_S = 2.0


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
        self.in_flight = InFlight(settings.max_in_flight_records, settings.max_in_flight_bytes)
        self._to_commit: dict[Partition, int] = {}  # acknowledged, not yet committed
        self._next_commit = 0.0
        self._next_control_poll = 0.0
        self._next_lag_check = 0.0

    def run(self) -> int:
        """Serve until stopped; 2 if there is no model that can serve."""
        kafka = self.settings.common.kafka
        scorer = self._load_current()
        if scorer is None:
            return 2
        wait_for_broker(kafka, self.topics, self.stop)
        transactional_id = self.settings.transactional_id
        # Exactly-once: the same producer, seen through its transactional interface.
        self.transactional: TransactionalProducer | None = None
        if transactional_id is not None:
            options = ProducerOptions(self.instance, transactional_id=transactional_id)
            self.transactional = create_transactional_producer(kafka, options)
        self.producer: Producer = self.transactional or create_producer(kafka, ProducerOptions(self.instance))
        self.consumer: Consumer = create_consumer(
            kafka,
            ConsumerOptions(
                self.instance,
                self.settings.group_id,
                max_poll_records=self.settings.max_batch,
                read_committed=transactional_id is not None,
            ),
        )
        self.control: Consumer = create_consumer(
            kafka, ConsumerOptions(f"{self.instance}-control", read_committed=True)
        )
        self.swapper = ModelSwapper(
            self.store,
            scorer,
            fetch=self.source.fetch if self.source else None,
            tracking_uri=self.settings.common.tracking_uri,
            upgrade=self._compiled_form(),
        )
        self._join_rollout_in_progress()
        metrics.MODEL_VERSION.set(scorer.version)
        metrics.COMPILED_SCORING.set(0)
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
            # In a transaction per batch nothing is left to commit when partitions are revoked.
            on_revoke = None if transactional_id else self._before_revocation
            self.consumer.subscribe(self.topics.app_messages, on_revoke=on_revoke)
            log.info(
                "predictor ready model_version=%s topic=%s group=%s retrain_every=%s guarantee=%s",
                scorer.version,
                self.topics.app_messages,
                self.settings.group_id,
                self.settings.retrain_every,
                self.settings.processing_guarantee,
            )
            self._serve()
            self._drain()
        finally:
            self.reporter.close()
            self.swapper.close()
            self.consumer.close()
            self.control.close()
            self.producer.close(timeout_s=10)
            log.info("predictor stopped")
        return 0

    def _compiled_form(self) -> Callable[[Scorer], Scorer] | None:
        if self.settings.scorer == "lightgbm":
            return None
        # The fixed holdout (the second half of adult.test) is what a compiled form must reproduce.
        holdout = frame_to_records(split_test(load_test())[1])
        return CompiledSwitch(CompiledCache.in_store(self.store.root), holdout).of

    def _join_rollout_in_progress(self) -> None:
        """A predictor that starts during a rollout scores its challenger too: the store says which,
        or, for a registry cache (--model-source mlflow), the latest control messages."""
        try:
            if self.source is None:
                rollout = self.store.challenger()
            else:
                history = recent_events(
                    self.settings.common.kafka, self.topics.model_events, f"{self.instance}-history"
                )
                rollout = rollout_in_progress(history)
            if rollout is not None:
                self.swapper.start_rollout(rollout)
        except (ModelStoreError, MessageError, KafkaError) as error:
            log.error("rollout in progress not joined error=%r", error)
        self._set_role_versions()

    def _set_role_versions(self) -> None:
        metrics.ROLE_VERSION.labels(role=CHAMPION).set(self.swapper.current.version)
        metrics.ROLE_VERSION.labels(role=CHALLENGER).set(self.swapper.rollout.version if self.swapper.rollout else 0)

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
            self._record_load(result)
        if time.monotonic() >= self._next_lag_check:
            self._update_lag()
            self._next_lag_check = time.monotonic() + LAG_CHECK_INTERVAL_S
        if time.monotonic() >= self._next_control_poll:
            self._read_control_messages()
            self._next_control_poll = time.monotonic() + CONTROL_POLL_INTERVAL_S
        if self.transactional is not None:
            self._serve_once_in_transactions(self.transactional)
            return
        try:
            self._settle()
            if self.in_flight.full():
                self._wait_for_oldest()  # back-pressure: the broker sets the pace
                return
            timeout_s = IN_FLIGHT_POLL_TIMEOUT_S if len(self.in_flight) else self.settings.poll_timeout_ms / 1000
            started = time.perf_counter()
            records = self.consumer.poll(timeout_s)
            metrics.STAGE_SECONDS.labels(stage="poll").inc(time.perf_counter() - started)
            if records:
                self.handle_batch(records)
        except KafkaError as error:
            if isinstance(error, FatalKafkaError):
                raise
            replay = self.in_flight.replay_offsets()
            log.warning("batches not acknowledged, replaying them partitions=%s error=%r", len(replay), error)
            self._rewind(replay)
            self.stop.wait(RETRY_BACKOFF_S)

    def _serve_once_in_transactions(self, producer: TransactionalProducer) -> None:
        """Exactly-once: poll one batch and handle it in one transaction. A transaction that cannot
        commit is aborted and its batch read again; a fenced producer stops the service."""
        records: list[Record] = []
        try:
            started = time.perf_counter()
            records = self.consumer.poll(self.settings.poll_timeout_ms / 1000)
            metrics.STAGE_SECONDS.labels(stage="poll").inc(time.perf_counter() - started)
            if records:
                self.handle_batch_in_transaction(producer, records)
        except KafkaError as error:
            if isinstance(error, FatalKafkaError):
                raise
            log.warning("transaction not committed, reading its batch again records=%s error=%r", len(records), error)
            metrics.TRANSACTIONS.labels(outcome="aborted").inc()
            if not isinstance(error, TransactionAborted):
                try:
                    producer.abort_transaction()
                except KafkaError as abort_error:
                    log.debug("abort after a failure error=%r", abort_error)
            self._rewind(replay_offsets(records))
            self.stop.wait(RETRY_BACKOFF_S)

    def handle_batch_in_transaction(self, producer: TransactionalProducer, records: list[Record]) -> None:
        """Answers, dead letters, observations, retrain requests and the batch's consumer offsets,
        committed together: a reader of committed records sees all of them once, or none."""
        started = time.perf_counter()
        outcome = self._decide(records)
        sending = time.perf_counter()
        producer.begin_transaction()
        topics = self.topics
        _, observations = self._send_outcome(outcome)
        if observations:
            producer.flush(timeout_s=DRAIN_TIMEOUT_S)  # their offsets decide the retrain requests
            stored_at = [delivery.result(timeout_s=0).offset for delivery in observations]
            for end in retrain_ends_in_transaction(stored_at, self.settings.retrain_every):
                log.info("retrain requested observations_end_offset=%s", end)
                metrics.RETRAIN_REQUESTS.inc()
                self._send(topics.retrain, RetrainRequested(end, self.instance).to_dict(), None)
        sent = time.perf_counter()
        producer.commit_transaction(commit_offsets(records), self.consumer)
        committed = time.perf_counter()
        metrics.TRANSACTIONS.labels(outcome="committed").inc()
        metrics.STAGE_SECONDS.labels(stage="send").inc(sent - sending)
        metrics.STAGE_SECONDS.labels(stage="commit").inc(committed - sent)
        metrics.REQUESTS.inc(len(records))
        metrics.BATCH_SIZE.observe(len(records))
        metrics.BATCH_SECONDS.observe(committed - started)

    def _decide(self, records: list[Record]) -> BatchOutcome:
        """The batch's outcome from the serving model (and the challenger of a rollout), recorded."""
        outcome = decide(
            records,
            self.swapper.current,
            self.settings.max_message_bytes,
            self.settings.explain_top,
            self.swapper.serving_challenger(),
        )
        self._record_outcome(outcome)
        return outcome

    def _send_outcome(self, outcome: BatchOutcome) -> tuple[list[Delivery], list[Delivery]]:
        """Send answers, error answers and dead letters (first list) and observations (second)."""
        topics = self.topics
        results = [self._send(topics.predictions, answer.to_dict(), answer.request_id) for answer in outcome.answers]
        results += [self._send(topics.predictions, error.to_dict(), error.request_id) for error in outcome.errors]
        results += [self._send(topics.dead_letter, dead.to_dict(), None) for dead in outcome.dead_letters]
        observations = [self._send(topics.observations, o.to_dict(), o.request_id) for o in outcome.observations]
        return results, observations

    def handle_batch(self, records: list[Record]) -> None:
        """Decide and send every result of one batch; it commits later, once acknowledged (`_settle`)."""
        started = time.perf_counter()
        outcome = self._decide(records)
        sending = time.perf_counter()
        results, observations = self._send_outcome(outcome)
        self.in_flight.add(SentBatch(records, results, observations))
        sent = time.perf_counter()
        metrics.STAGE_SECONDS.labels(stage="send").inc(sent - sending)
        metrics.REQUESTS.inc(len(records))
        metrics.BATCH_SIZE.observe(len(records))
        metrics.BATCH_SECONDS.observe(sent - started)

    def _settle(self, commit_now: bool = False) -> None:
        """Without waiting: complete the acknowledged batches and commit them (at most every commit
        interval, unless `commit_now`). Raises a delivery's error."""
        self._complete_acknowledged()
        if not self._to_commit or not (commit_now or time.monotonic() >= self._next_commit):
            return
        started = time.perf_counter()
        assigned = self.consumer.assignment()
        # Batches of partitions a rebalance took are the next owner's to commit now.
        committing = {partition: offset for partition, offset in self._to_commit.items() if partition in assigned}
        self._to_commit = {}
        try:
            self.consumer.commit(committing)
        except CommitFailed as error:
            # The answers are out; after a rebalance another member may answer these again.
            log.warning("offset commit failed, records may be answered twice error=%r", error)
        self._next_commit = time.monotonic() + self.settings.commit_interval_ms / 1000
        metrics.STAGE_SECONDS.labels(stage="commit").inc(time.perf_counter() - started)

    def _complete_acknowledged(self) -> None:
        """Ask for the retrains that acknowledged observations made due, and move the oldest batches
        whose every delivery is acknowledged to the offsets to commit. Raises a delivery's error."""
        completed: list[SentBatch] = []
        while (batch := self.in_flight.oldest()) is not None and batch.first_pending() is None:
            batch.raise_failures()
            if not batch.retrain_asked:
                batch.retrain_asked = True
                stored_at = [delivery.result(timeout_s=0).offset for delivery in batch.observations]
                for end in retrain_ends(stored_at, self.settings.retrain_every):
                    log.info("retrain requested observations_end_offset=%s", end)
                    metrics.RETRAIN_REQUESTS.inc()
                    request = RetrainRequested(end, self.instance).to_dict()
                    batch.retrain_requests.append(self._send(self.topics.retrain, request, None))
                if batch.retrain_requests:
                    continue  # this batch completes once its retrain requests are acknowledged too
            completed.append(self.in_flight.pop_oldest())
        self._to_commit |= offsets_to_commit(completed)  # later batches' offsets are higher

    def _wait_for_oldest(self) -> None:
        """Block until the oldest batch's deliveries are all known, saying so during an outage."""
        started = time.perf_counter()
        waiting_since = time.monotonic()
        next_log = waiting_since + ACK_WAIT_LOG_EVERY_S
        while (batch := self.in_flight.oldest()) is not None and (pending := batch.first_pending()) is not None:
            try:
                pending.result(timeout_s=0.5)
            except KafkaTimeout:
                if self.stop.is_set():
                    break
                if time.monotonic() >= next_log:
                    log.warning(
                        "waiting for broker acknowledgements in_flight_records=%s waited_s=%.0f",
                        self.in_flight.records,
                        time.monotonic() - waiting_since,
                    )
                    next_log = time.monotonic() + ACK_WAIT_LOG_EVERY_S
        metrics.STAGE_SECONDS.labels(stage="ack_wait").inc(time.perf_counter() - started)
        self._settle()

    def _drain(self) -> None:
        """On a clean stop: commit what the broker acknowledges within
        DRAIN_TIMEOUT_S (what is left is read again, by this member or the next)."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        try:
            while len(self.in_flight) and time.monotonic() < deadline:
                self.producer.flush(timeout_s=max(0.1, deadline - time.monotonic()))
                self._settle(commit_now=True)
            self._settle(commit_now=True)
        except KafkaError as error:
            log.warning("unacknowledged batches left, they will be read again error=%r", error)

    def _before_revocation(self, partitions: set[Partition]) -> dict[Partition, int]:
        """Called inside poll when a rebalance takes partitions: wait briefly for what is in flight and
        return the offsets answered so far, which the consumer commits before the partitions go, so
        the next owner does not answer them again (what is still unacknowledged, it will)."""
        if len(self.in_flight):
            log.info("partitions revoked, committing what is answered partitions=%s", len(partitions))
            try:
                self.producer.flush(timeout_s=REVOCATION_FLUSH_TIMEOUT_S)
            except KafkaError as error:
                log.warning("deliveries unacknowledged at a rebalance error=%r", error)
        try:
            self._complete_acknowledged()
        except KafkaError as error:  # the loop replays the failed batch if its partition stays here
            log.warning("a delivery failed before a rebalance error=%r", error)
        committing, self._to_commit = self._to_commit, {}
        return committing

    def _record_load(self, result: LoadResult) -> None:
        """Metrics (and a refusal message) for a model the background threads loaded or compiled."""
        if result.error is not None:
            metrics.MODELS_REFUSED.inc()
            self._send_control(ModelRefused(result.version, result.error, self.instance).to_dict())
        elif result.compile_refused is not None:
            metrics.COMPILED_REFUSED.labels(reason=result.compile_refused).inc()
        elif result.role == CHALLENGER:
            return  # on trial: it serves only if the rollout promotes it
        elif result.scorer is not None and result.scorer.compiled is not None:
            metrics.COMPILED_SCORING.set(1)
        else:
            metrics.MODEL_SWAPS.inc()
            metrics.MODEL_VERSION.set(result.version)
            metrics.COMPILED_SCORING.set(0)
            self._set_role_versions()

    def _record_outcome(self, outcome: BatchOutcome) -> None:
        """Logs, metrics and live quality of a batch's outcome."""
        metrics.STAGE_SECONDS.labels(stage="validate").inc(outcome.validate_s)
        if outcome.scoring_failure is not None:
            log.error("scoring failed model_version=%s error=%s", self.swapper.current.version, outcome.scoring_failure)
        if outcome.scored is not None:
            scored = outcome.scored
            metrics.STAGE_SECONDS.labels(stage="transform").inc(scored.transform_s)
            metrics.STAGE_SECONDS.labels(stage="predict").inc(scored.predict_s)
            labels = [request.label for request in scored.requests]
            self.reporter.for_version(scored.model_version).add(scored.probabilities, labels)
            metrics.PREDICTIONS.labels(model_version=str(scored.model_version)).inc(len(scored.requests))
            if outcome.shadow is None:
                metrics.ANSWERS.labels(role=CHAMPION).inc(len(outcome.answers))
            else:  # the challenger's live quality, on the same requests
                self.reporter.for_version(outcome.shadow.model_version).add(outcome.shadow.probabilities, labels)
                by_challenger = sum(answer.role == CHALLENGER for answer in outcome.answers)
                metrics.ANSWERS.labels(role=CHALLENGER).inc(by_challenger)
                metrics.ANSWERS.labels(role=CHAMPION).inc(len(outcome.answers) - by_challenger)
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

    def _rewind(self, replay: dict[Partition, int]) -> None:
        assigned = self.consumer.assignment()
        for partition, offset in replay.items():
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
                message = event_from_dict(decode_object(record.value))
            except MessageError as error:
                log.warning("unreadable control message offset=%s error=%s", record.offset, error)
                continue
            if isinstance(message, ChallengerStarted):
                self.swapper.start_rollout(message)
                self._set_role_versions()
                continue
            if isinstance(message, RolloutDecided):
                if self.swapper.end_rollout(message.version, message.promoted):
                    metrics.MODEL_SWAPS.inc()
                    metrics.MODEL_VERSION.set(message.version)
                    metrics.COMPILED_SCORING.set(0)
                self._set_role_versions()
                continue
            version = serving_version(message)
            if version is not None:
                log.info("new serving version announced, loading version=%s event=%s", version, message.EVENT)
                self.swapper.request(version)

    def _send(self, topic: str, payload: dict, key: str | None) -> Delivery:
        return self.producer.send(topic, encode(payload), key.encode("utf-8") if key else None)

    def _send_control(self, payload: dict) -> None:
        """A message of the predictor's own (not caused by a batch), sent between batches."""
        if self.transactional is not None:  # every send belongs to a transaction
            self.transactional.begin_transaction()
            self._send(self.topics.retrain, payload, None)
            self.transactional.commit_transaction({}, self.consumer)
            return
        self._send(self.topics.retrain, payload, None)
        flush_or_wait(self.producer, self.stop, "control message")


def run(settings: PredictorSettings, stop: threading.Event) -> int:
    return PredictorService(settings, stop).run()
