"""Backtest: judge one model version against another on the observations log, as a rollout would.

Both versions (from the model store) score the same labelled observations, read from the log as
the trainer reads it (once per request id, in log order); the pairs then go through the trial's
own judgement (train/rollout/sequential.py, the same settings): the sequential verdict, with the
pairs it took and its interval, and the fixed rule's figures (DeLong's interval on the AUC
difference, the log-loss difference) over every pair of the range. Each version validates the
observations against its own form: one it refuses counts against it as a rollout's challenger
refusals do (the error-rate guardrail).

The comparison is pure (`compare`); `run` only reads the log and the store and prints.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np

from train.rollout.guardrails import ChallengerHealth
from train.rollout.judgement import Interval, PairedFigures, Verdict
from train.rollout.sequential import confidence_sequence, figures_if_any, judge_rollout, log_loss_differences
from utils.cli import EXIT_CONFIGURATION
from utils.kafka.clients import create_consumer
from utils.kafka.interface import ConsumerOptions, Partition
from utils.kafka.reading import read_available
from utils.kafka.topics import wait_for_broker
from utils.messages.codec import MessageError, decode_object
from utils.messages.requests import Observation
from utils.model_store import ModelStore, ModelStoreError
from utils.scoring import Scorer, load_scorer
from utils.settings import BacktestSettings, JudgementSettings, KafkaSettings

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 120.0
READ_BATCH = 5000
SCORING_BATCH = 500  # as a predictor's largest batch: the scoring time per request is comparable


@dataclass(frozen=True)
class Scored:
    """What one version said of the observations it could read (NaN where its form refused one)."""

    probabilities: np.ndarray
    refused: int
    scoring_us: float | None  # per request scored


@dataclass(frozen=True)
class Backtest:
    version: int
    against: int
    observations: int
    pairs: int
    verdict: Verdict
    figures: PairedFigures | None  # every pair of the range: DeLong on AUC, log loss, accuracy
    log_loss_sequence: Interval | None  # the confidence sequence after every pair of the range

    def to_dict(self) -> dict:
        return asdict(self)


def read_log(kafka: KafkaSettings, topic: str, from_offset: int, to_offset: int | None) -> list[Observation]:
    """The observations with from_offset <= offset < to_offset (None: to the end), the last one of
    each request id, in the order each id first appeared (as the trainer reads them)."""
    consumer = create_consumer(kafka, ConsumerOptions("backtest", max_poll_records=READ_BATCH, read_committed=True))
    by_request: dict[str, Observation] = {}
    unreadable = 0
    try:
        for record in read_available(consumer, Partition(topic, 0), from_offset, READ_TIMEOUT_S, READ_BATCH):
            if to_offset is not None and record.offset >= to_offset:
                break
            try:
                observation = Observation.from_dict(decode_object(record.value))
            except MessageError:
                unreadable += 1
                continue
            by_request[observation.request_id] = observation
    finally:
        consumer.close()
    if unreadable:
        log.warning("unreadable observations skipped count=%s", unreadable)
    return list(by_request.values())


def score_observations(scorer: Scorer, observations: list[Observation]) -> Scored:
    """The version's probabilities for the observations its form accepts, in batches."""
    probabilities = np.full(len(observations), np.nan)
    readable: list[int] = []
    features = []
    for index, observation in enumerate(observations):
        try:
            features.append(scorer.form.features(observation.features))
            readable.append(index)
        except MessageError:
            continue
    took = 0.0
    for start in range(0, len(features), SCORING_BATCH):
        began = time.perf_counter()
        said = scorer.predict_proba(features[start : start + SCORING_BATCH])
        took += time.perf_counter() - began
        probabilities[readable[start : start + SCORING_BATCH]] = said
    scoring_us = took / len(features) * 1e6 if features else None
    return Scored(probabilities, len(observations) - len(readable), scoring_us)


def compare(
    version: int, against: int, labels: np.ndarray, champion: Scored, challenger: Scored, rule: JudgementSettings
) -> Backtest:
    """The trial's judgement of `version` (the challenger) against `against` (the champion) on the
    pairs both scored, and the fixed rule's figures over all of them."""
    paired = ~np.isnan(champion.probabilities) & ~np.isnan(challenger.probabilities)
    labels = np.asarray(labels, dtype=np.int64)[paired]
    theirs, ours = champion.probabilities[paired], challenger.probabilities[paired]
    health = ChallengerHealth(len(paired), challenger.refused, challenger.scoring_us)
    verdict = judge_rollout(labels, theirs, ours, health, rule)
    sequence = None
    if len(labels):
        mean, low, high = confidence_sequence(
            log_loss_differences(labels, theirs, ours), rule.confidence, rule.min_labelled
        )
        sequence = Interval(float(mean[-1]), float(low[-1]), float(high[-1]))
    return Backtest(
        version,
        against,
        len(paired),
        len(labels),
        verdict,
        figures_if_any(labels, theirs, ours, rule.confidence),
        sequence,
    )


def report(result: Backtest) -> str:
    """What the backtest prints."""
    verdict, judgement = result.verdict, result.verdict.judgement
    lines = [
        f"backtest: version {result.version} (challenger) against version {result.against} (champion), "
        f"{result.pairs} paired labelled observations of {result.observations}",
        f"verdict: {verdict.decision} ({verdict.reason})",
    ]
    if judgement is not None:
        interval = judgement.log_loss_difference
        bounds = f", log-loss interval [{interval.low:+.4f}, {interval.high:+.4f}]" if interval is not None else ""
        lines.append(f"decided by the {judgement.rule} rule after {judgement.pairs} pairs{bounds}")
    if result.log_loss_sequence is not None:
        sequence = result.log_loss_sequence
        lines.append(
            f"log-loss difference over all {result.pairs} pairs: {sequence.estimate:+.4f}, confidence sequence "
            f"[{sequence.low:+.4f}, {sequence.high:+.4f}]"
        )
    figures = result.figures
    if figures is not None:
        auc = figures.auc_difference
        lines.append(
            f"fixed rule over all pairs: AUC {figures.challenger['auc']:.4f} vs {figures.champion['auc']:.4f}, "
            f"difference {auc.estimate:+.4f}, DeLong {figures.confidence:.0%} interval "
            f"[{auc.low:+.4f}, {auc.high:+.4f}]; "
            f"log loss {figures.challenger['log_loss']:.4f} vs {figures.champion['log_loss']:.4f}"
        )
    return "\n".join(lines)


def run(settings: BacktestSettings, stop: threading.Event) -> int:
    """0 once the comparison is printed; 2 if a version cannot be loaded or the log holds no pair."""
    store = ModelStore(settings.common.model_store)
    assert settings.version is not None  # BacktestSettings requires it
    against = settings.against if settings.against is not None else store.current_version()
    if against is None:
        log.error("no current version to compare with: give --against")
        return EXIT_CONFIGURATION
    try:
        challenger, champion = load_scorer(store, settings.version), load_scorer(store, against)
    except ModelStoreError as error:
        log.error("cannot backtest: %s (versions in the store: %s)", error, store.versions())
        return EXIT_CONFIGURATION
    topics = settings.common.topics
    wait_for_broker(settings.common.kafka, topics, stop, (topics.observations,))
    observations = read_log(settings.common.kafka, topics.observations, settings.from_offset, settings.to_offset)
    labels = np.array([observation.label for observation in observations], dtype=np.int64)
    result = compare(
        settings.version,
        against,
        labels,
        score_observations(champion, observations),
        score_observations(challenger, observations),
        settings.judgement,
    )
    log.info(
        "backtest version=%s against=%s observations=%s pairs=%s decision=%s",
        result.version,
        result.against,
        result.observations,
        result.pairs,
        result.verdict.decision,
    )
    if result.pairs == 0:
        log.error("no labelled observation both versions could score in the range")
        return EXIT_CONFIGURATION
    print(report(result))
    if settings.summary_json is not None:
        settings.summary_json.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return 0
