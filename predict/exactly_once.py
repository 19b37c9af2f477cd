"""Exactly-once serving: one Kafka transaction per batch. Its answers, dead letters, observations,
retrain requests and consumer offsets are committed together: a reader of committed records sees
all of them once, or none. A transaction that cannot commit is aborted and its batch read again;
one whose commit did not answer is read again from the group's committed offsets (which say whether
it landed); a fenced producer (a newer instance took over the transactional id) stops the service."""

from __future__ import annotations

import logging
import time

from predict.batch import retrain_ends_in_transaction
from predict.loop import RETRY_BACKOFF_S, Serving, ServingLoop
from utils import metrics
from utils.kafka.interface import (
    FatalKafkaError,
    KafkaError,
    Record,
    TransactionAborted,
    TransactionalProducer,
    TransactionInDoubt,
)
from utils.kafka.offsets import commit_offsets, replay_offsets
from utils.messages.events import PredictorEvent

log = logging.getLogger(__name__)

# How long a transaction waits for its observations' acknowledgements: longer than a partition
# leader's failover (a broker fences a dead node after its 9 s session timeout, then elects), so
# that a failover costs a wait rather than an abort, whose purge of in-flight records librdkafka
# can answer with a fatal OUT_OF_ORDER_SEQUENCE_NUMBER. Within the transaction timeout (120 s).
ACKNOWLEDGEMENT_WAIT_S = 30.0
# Failures after which the transaction has ended already: nothing to abort.
ENDED = (TransactionAborted, TransactionInDoubt)


class ExactlyOnceLoop(ServingLoop):
    def __init__(self, serving: Serving, producer: TransactionalProducer):
        super().__init__(serving)
        self.transactional = producer  # the same producer, seen through its transactional interface

    def serve_once(self) -> None:
        records: list[Record] = []
        try:
            records = self.poll(self.settings.poll_timeout_ms / 1000)
            if records:
                self.handle_batch(records)
        except KafkaError as error:
            if isinstance(error, FatalKafkaError):
                raise
            log.warning("transaction not committed, reading its batch again records=%s error=%r", len(records), error)
            metrics.TRANSACTIONS.labels(outcome="aborted").inc()
            if not isinstance(error, ENDED):
                try:
                    self.transactional.abort_transaction()
                except KafkaError as abort_error:
                    log.debug("abort after a failure error=%r", abort_error)
            if isinstance(error, TransactionInDoubt):
                self.rewind_to_committed(replay_offsets(records))  # not repeated if it did land
            else:
                self.rewind(replay_offsets(records))
            self.stop.wait(RETRY_BACKOFF_S)

    def handle_batch(self, records: list[Record]) -> None:
        started = time.perf_counter()
        outcome = self.decide(records)
        sending = time.perf_counter()
        self.transactional.begin_transaction()
        _, observations = self.send_outcome(outcome)
        if observations:
            self.transactional.flush(timeout_s=ACKNOWLEDGEMENT_WAIT_S)  # their offsets decide the retrain requests
            stored_at = [delivery.result(timeout_s=0).offset for delivery in observations]
            self.saw_observations(stored_at)
            self.ask_for_retrains(retrain_ends_in_transaction(stored_at, self.settings.retrain_every))
        sent = time.perf_counter()
        self.transactional.commit_transaction(commit_offsets(records), self.consumer)
        committed = time.perf_counter()
        metrics.TRANSACTIONS.labels(outcome="committed").inc()
        metrics.STAGE_SECONDS.labels(stage="send").inc(sent - sending)
        metrics.STAGE_SECONDS.labels(stage="commit").inc(committed - sent)
        self.telemetry.batch(len(records), committed - started)

    def send_own(self, event: PredictorEvent) -> None:
        """Every send belongs to a transaction: this one holds the message alone, and is tried
        again until it commits (or the service stops)."""
        while True:
            try:
                self.transactional.begin_transaction()
                self.send(self.topics.retrain, event.to_dict(), None)
                self.transactional.commit_transaction({}, self.consumer)
                return
            except KafkaError as error:
                if isinstance(error, FatalKafkaError) or self.stop.is_set():
                    raise
                log.warning("message not committed, sending it again event=%s error=%r", event.EVENT, error)
                if not isinstance(error, ENDED):  # in doubt: sent again, a repeat at worst
                    try:
                        self.transactional.abort_transaction()
                    except KafkaError as abort_error:
                        log.debug("abort after a failure error=%r", abort_error)
                self.stop.wait(RETRY_BACKOFF_S)
