"""At-least-once serving, pipelined: the loop goes on polling and scoring while the broker
acknowledges earlier batches (`predict/in_flight.py` bounds how much may wait).

A batch's offsets are committed only after every answer, dead letter, observation and retrain
request it caused, and every batch before it, has been acknowledged. A crash before that replays
the batch; the sample app drops repeated answers by request id.
"""

from __future__ import annotations

import logging
import time

from predict.batch import retrain_ends
from predict.in_flight import InFlight, SentBatch, offsets_to_commit, plan_commit
from predict.loop import DRAIN_TIMEOUT_S, RETRY_BACKOFF_S, Serving, ServingLoop
from utils import metrics
from utils.kafka.health import flush_or_wait
from utils.kafka.interface import CommitFailed, FatalKafkaError, KafkaError, KafkaTimeout, Partition, Record
from utils.messages.events import PredictorEvent

log = logging.getLogger(__name__)

# While batches are in flight, a poll waits at most this long, so acknowledged ones commit promptly.
IN_FLIGHT_POLL_TIMEOUT_S = 0.002
ACK_WAIT_LOG_EVERY_S = 5.0
# A rebalance waits for this member: a short wait, what is left is read again by the next owner.
REVOCATION_FLUSH_TIMEOUT_S = 2.0


class AtLeastOnceLoop(ServingLoop):
    def __init__(self, serving: Serving):
        super().__init__(serving)
        self.in_flight = InFlight(self.settings.max_in_flight_records, self.settings.max_in_flight_bytes)
        self._to_commit: dict[Partition, int] = {}  # acknowledged, not yet committed
        self._committed_async: dict[Partition, int] = {}  # sent, its answer not awaited (`plan_commit`)
        self._next_commit = 0.0

    def serve_once(self) -> None:
        try:
            self._settle()
            if self.in_flight.full():
                self._wait_for_oldest()  # back-pressure: the broker sets the pace
                return
            timeout_s = IN_FLIGHT_POLL_TIMEOUT_S if len(self.in_flight) else self.settings.poll_timeout_ms / 1000
            records = self.poll(timeout_s)
            if records:
                self.handle_batch(records)
        except KafkaError as error:
            if isinstance(error, FatalKafkaError):
                raise
            replay = self.in_flight.replay_offsets()
            log.warning("batches not acknowledged, replaying them partitions=%s error=%r", len(replay), error)
            self.rewind(replay)
            self.stop.wait(RETRY_BACKOFF_S)

    def handle_batch(self, records: list[Record]) -> None:
        """Decide and send every result of one batch; it commits later, once acknowledged (`_settle`)."""
        started = time.perf_counter()
        outcome = self.decide(records)
        sending = time.perf_counter()
        results, observations = self.send_outcome(outcome)
        self.in_flight.add(SentBatch(records, results, observations))
        sent = time.perf_counter()
        metrics.STAGE_SECONDS.labels(stage="send").inc(sent - sending)
        self.telemetry.batch(len(records), sent - started)

    def send_own(self, event: PredictorEvent) -> None:
        self.send(self.topics.retrain, event.to_dict(), None)
        flush_or_wait(self.producer, self.stop, event.EVENT)

    def _settle(self, commit_now: bool = False) -> None:
        """Without waiting: complete the acknowledged batches and commit them (at most every commit
        interval, unless `commit_now`). Raises a delivery's error.

        The periodic commit is asynchronous: waiting for the coordinator's answer (20-90 ms on this
        machine) stopped the serving loop ten times a second. `commit_now` (a stop) waits for it."""
        self._complete_acknowledged()
        due = commit_now or time.monotonic() >= self._next_commit
        if not due or not (self._to_commit or (commit_now and self._committed_async)):
            return
        started = time.perf_counter()
        plan = plan_commit(self._to_commit, self._committed_async, self.consumer.assignment(), stopping=commit_now)
        self._to_commit, self._committed_async = {}, plan.unconfirmed
        try:
            if plan.wait:
                self.consumer.commit(plan.offsets)
            else:
                self.consumer.commit_async(plan.offsets)
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
                self.saw_observations(stored_at)
                batch.retrain_requests += self.ask_for_retrains(retrain_ends(stored_at, self.settings.retrain_every))
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

    def drain(self) -> None:
        """Commit what the broker acknowledges within DRAIN_TIMEOUT_S (what is left is read again,
        by this member or the next)."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        try:
            while len(self.in_flight) and time.monotonic() < deadline:
                self.producer.flush(timeout_s=max(0.1, deadline - time.monotonic()))
                self._settle(commit_now=True)
            self._settle(commit_now=True)
        except KafkaError as error:
            log.warning("unacknowledged batches left, they will be read again error=%r", error)

    def before_revocation(self, partitions: set[Partition]) -> dict[Partition, int]:
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
        committing = self._committed_async | self._to_commit
        self._committed_async, self._to_commit = {}, {}
        return committing
