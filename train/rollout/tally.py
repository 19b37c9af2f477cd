"""A rollout's paired tally: the labelled requests both models scored, read from the observations log.

The tally is not kept in memory anywhere that matters: every predictor writes, into each labelled
request's observation, what both models said (`Observation.scores`). The observations log is the
tally; `PairedTally` reads it from where the rollout began, so a trainer or predictor restarted
mid-rollout loses nothing (a replayed batch counts once: the tally is keyed by request id).
"""

from __future__ import annotations

import logging

import numpy as np

from train.rollout.guardrails import ChallengerHealth
from utils.kafka.clients import create_consumer
from utils.kafka.interface import Consumer, ConsumerOptions, Partition
from utils.kafka.reading import read_available
from utils.messages.codec import MessageError, decode_object
from utils.messages.events import ChallengerStarted
from utils.messages.requests import Observation
from utils.settings import KafkaSettings

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 30.0
READ_BATCH = 5000


class PairedTally:
    """The labelled requests both models of a rollout scored, read from the observations log."""

    def __init__(self, kafka: KafkaSettings, topic: str, rollout: ChallengerStarted, client_id: str):
        self.rollout = rollout
        self.partition = Partition(topic, 0)
        self.next_offset = rollout.observations_start
        self._pairs: dict[str, tuple[int, float, float]] = {}
        self._challenger_us: dict[str, float] = {}  # of the pairs whose observation says how long it took
        self._missed: set[str] = set()  # requests the challenger was asked to score and did not
        self._consumer: Consumer = create_consumer(
            kafka, ConsumerOptions(client_id, max_poll_records=READ_BATCH, read_committed=True)
        )

    def catch_up(self) -> int:
        """Read what predictors have committed since the last call; the number of paired requests."""
        champion, challenger = self.rollout.champion_version, self.rollout.version
        for record in read_available(self._consumer, self.partition, self.next_offset, READ_TIMEOUT_S, READ_BATCH):
            self.next_offset = record.offset + 1
            try:
                observation = Observation.from_dict(decode_object(record.value))
            except MessageError as error:
                log.warning("unreadable observation in the tally offset=%s error=%s", record.offset, error)
                continue
            scores = observation.scores or {}
            request_id = observation.request_id
            if champion in scores and challenger in scores:
                self._pairs[request_id] = (observation.label, scores[champion], scores[challenger])
                self._missed.discard(request_id)  # a replay that the challenger did score
                took = (observation.scoring_us or {}).get(challenger)
                if took is not None:
                    self._challenger_us[request_id] = took
            elif observation.missed == challenger and request_id not in self._pairs:
                self._missed.add(request_id)
        return len(self._pairs)

    def health(self) -> ChallengerHealth:
        """The challenger's misses and scoring time so far (train/rollout/guardrails.py)."""
        times = self._challenger_us.values()
        return ChallengerHealth(
            asked=len(self._pairs) + len(self._missed),
            failed=len(self._missed),
            scoring_us=sum(times) / len(times) if times else None,
        )

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Labels, the champion's probabilities, the challenger's probabilities."""
        if not self._pairs:
            return np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
        labels, champion, challenger = zip(*self._pairs.values(), strict=True)
        return np.array(labels, dtype=np.int64), np.array(champion), np.array(challenger)

    def close(self) -> None:
        self._consumer.close()


def observations_end(kafka: KafkaSettings, topic: str, client_id: str) -> int:
    """The observations log's end offset: where a rollout that starts now begins its tally."""
    consumer = create_consumer(kafka, ConsumerOptions(client_id))
    try:
        partition = Partition(topic, 0)
        return consumer.end_offsets([partition])[partition]
    finally:
        consumer.close()
