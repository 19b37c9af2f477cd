"""What to do with one polled batch, decided without I/O: records and a scorer in, an outcome out.

The service loop sends what these functions return and commits what they say; every rule that
decides what a requester gets back, what is dead-lettered, what becomes training data, when a
retrain is asked for lives here (which offsets to commit: `utils/kafka/offsets.py`), with unit tests.
Nothing here mutates its input.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from predict.explain import summarise
from utils.features import FEATURE_NAMES
from utils.kafka.interface import Record
from utils.messages import (
    DeadLetter,
    Explanation,
    Observation,
    Prediction,
    PredictionError,
    PredictionRequest,
    decode_object,
    peek_request_id,
)
from utils.schema import MessageError, read_request_id
from utils.scoring import DECISION_THRESHOLD, Scorer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Triage:
    """A polled batch sorted by what must happen to each record."""

    requests: tuple[PredictionRequest, ...] = ()
    errors: tuple[PredictionError, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()


@dataclass(frozen=True)
class Scored:
    """The requests a model scored, with what it said (for answers and live quality)."""

    requests: tuple[PredictionRequest, ...]
    probabilities: np.ndarray
    model_version: int
    engine: str = "lightgbm"
    transform_s: float = 0.0
    predict_s: float = 0.0


@dataclass(frozen=True)
class BatchOutcome:
    """Everything one batch causes: answers and error answers (to `predictions`), dead letters,
    observations (labelled valid requests), and what the model scored."""

    answers: tuple[Prediction, ...] = ()
    errors: tuple[PredictionError, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()
    observations: tuple[Observation, ...] = ()
    scored: Scored | None = None
    scoring_failure: str | None = field(default=None)
    validate_s: float = 0.0  # time spent reading and validating the records


def triage(records: Sequence[Record], max_bytes: int) -> Triage:
    """Validate each record alone: one bad record never affects the others."""
    requests: list[PredictionRequest] = []
    errors: list[PredictionError] = []
    dead_letters: list[DeadLetter] = []
    for record in records:
        request_id = None
        try:
            if record.value is not None and len(record.value) > max_bytes:
                # Refused before parsing: a huge record must not cost a full JSON parse.
                request_id = peek_request_id(record.value)
                raise MessageError("too_large", f"the message has {len(record.value)} bytes, the limit is {max_bytes}")
            payload = decode_object(record.value)
            request_id = read_request_id(payload)
            requests.append(PredictionRequest.from_dict(payload))
        except MessageError as error:
            request_id = request_id or error.request_id  # an id that breaks the rule, still safe to echo
            if request_id is None:
                dead_letters.append(
                    DeadLetter.from_record(error, record.topic, record.partition, record.offset, record.value)
                )
            else:
                errors.append(PredictionError(request_id, error.code, error.message))
    return Triage(tuple(requests), tuple(errors), tuple(dead_letters))


def score(
    requests: Sequence[PredictionRequest], scorer: Scorer, explain_top: int
) -> tuple[tuple[Prediction, ...], Scored | None]:
    """One model call for all requests (and one contributions call for those asking why). Raises
    whatever the model raises."""
    if not requests:
        return (), None
    started = time.perf_counter()
    matrix = scorer.transform([request.features for request in requests])
    transformed = time.perf_counter()
    probabilities = scorer.predict_matrix(matrix)
    predicted = time.perf_counter()
    predictions = probabilities >= DECISION_THRESHOLD
    explanations: list[Explanation | None] = [None] * len(requests)
    asking = [index for index, request in enumerate(requests) if request.explain]
    if asking:
        for index, row in zip(asking, scorer.contributions(matrix[asking]), strict=True):
            explanations[index] = summarise(row, FEATURE_NAMES, explain_top)
    answers = tuple(
        Prediction(request.request_id, int(prediction), float(probability), scorer.version, explanation)
        for request, prediction, probability, explanation in zip(
            requests, predictions, probabilities, explanations, strict=True
        )
    )
    return answers, Scored(
        tuple(requests), probabilities, scorer.version, scorer.engine, transformed - started, predicted - transformed
    )


def decide(records: Sequence[Record], scorer: Scorer, max_bytes: int, explain_top: int) -> BatchOutcome:
    """The outcome of one batch. A scoring failure answers each valid request with an
    `internal_error` instead of leaving it unanswered; its observations are still kept (they are
    valid training data whatever the model did)."""
    started = time.perf_counter()
    sorted_batch = triage(records, max_bytes)
    validate_s = time.perf_counter() - started
    observations = tuple(
        Observation(r.request_id, r.features, r.label) for r in sorted_batch.requests if r.label is not None
    )
    try:
        answers, scored = score(sorted_batch.requests, scorer, explain_top)
    except Exception as error:  # a model bug must not leave requests unanswered
        failure = f"scoring failed: {error!r}"
        failed = tuple(PredictionError(r.request_id, "internal_error", failure) for r in sorted_batch.requests)
        return BatchOutcome(
            errors=sorted_batch.errors + failed,
            dead_letters=sorted_batch.dead_letters,
            observations=observations,
            scoring_failure=failure,
            validate_s=validate_s,
        )
    return BatchOutcome(
        answers, sorted_batch.errors, sorted_batch.dead_letters, observations, scored, validate_s=validate_s
    )


def retrain_ends(observation_offsets: Iterable[int], every: int) -> list[int]:
    """The retrain requests due for these acknowledged observation offsets: one each time the
    observations log (one partition, shared by every predictor) completes a multiple of `every`.
    The count is global, so N predictors do not retrain N times; each end offset belongs to exactly
    one observation, so exactly one predictor asks for it."""
    return sorted(offset + 1 for offset in observation_offsets if (offset + 1) % every == 0)
