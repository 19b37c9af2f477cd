"""What to do with one polled batch, decided without I/O: records and a scorer in, an outcome out.

The service loop sends what these functions return and commits what they say; every rule that
decides what a requester gets back, what is dead-lettered, what becomes training data, when a
retrain is asked for lives here (which offsets to commit: `utils/kafka/offsets.py`), with unit tests.
Nothing here mutates its input.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from predict.explain import summarise
from predict.schema_cache import MissingSchema, SchemaLookup, WriterSchema
from utils.form import Form
from utils.kafka.interface import Record
from utils.messages.codec import MessageError
from utils.messages.requests import (
    CHALLENGER,
    CHAMPION,
    DeadLetter,
    Explanation,
    Observation,
    Prediction,
    PredictionError,
    PredictionRequest,
    Role,
    peek_request_id,
    read_request_id,
)
from utils.request_decoder import RequestDecoder, decoder_of
from utils.schema_registry import wire
from utils.schema_registry.schemas import avro_string_prefix
from utils.scoring import DECISION_THRESHOLD, Scorer

log = logging.getLogger(__name__)

# How a request came, and so how its answer goes: plain JSON, or the registry's wire format with a
# JSON Schema or an Avro schema (docs/schema-registry.md).
AnswerFormat = Literal["plain", "json", "avro"]
PLAIN: AnswerFormat = "plain"
NO_SCHEMAS: Mapping[int, SchemaLookup] = {}


@dataclass(frozen=True)
class Triage:
    """A polled batch sorted by what must happen to each record."""

    requests: tuple[PredictionRequest, ...] = ()
    errors: tuple[PredictionError, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()
    # Each request as a challenger of another form re-reads it: its JSON bytes, or a JSON object.
    payloads: tuple[bytes | dict, ...] = ()
    formats: tuple[AnswerFormat, ...] = ()  # of each request (empty: all plain)
    error_formats: tuple[AnswerFormat, ...] = ()  # of each error answer (empty: all plain)


@dataclass(frozen=True)
class Scored:
    """The requests a model scored, with what it said (for answers and live quality)."""

    requests: tuple[PredictionRequest, ...]
    probabilities: np.ndarray
    model_version: int
    engine: str = "lightgbm"
    transform_s: float = 0.0
    predict_s: float = 0.0
    matrix: np.ndarray | None = None  # the model's input, kept for explanations
    rows: tuple[int, ...] | None = None  # a challenger's: which of the batch's requests these are (None: all)


@dataclass(frozen=True)
class Challenger:
    """A version on trial: it scores every request beside the champion and, in a canary rollout,
    answers `canary_fraction` of them (0 in a shadow rollout)."""

    scorer: Scorer
    canary_fraction: float = 0.0


@dataclass(frozen=True)
class BatchOutcome:
    """Everything one batch causes: answers and error answers (to `predictions`), dead letters,
    observations (labelled valid requests), and what the model scored."""

    answers: tuple[Prediction, ...] = ()
    errors: tuple[PredictionError, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()
    observations: tuple[Observation, ...] = ()
    scored: Scored | None = None
    shadow: Scored | None = None  # the challenger's scores of the same requests, during a rollout
    scoring_failure: str | None = field(default=None)
    validate_s: float = 0.0  # time spent reading and validating the records
    answer_formats: tuple[AnswerFormat, ...] = ()  # of each answer (empty: all plain)
    error_formats: tuple[AnswerFormat, ...] = ()  # of each error answer (empty: all plain)


def triage(
    records: Sequence[Record], max_bytes: int, form: Form, schemas: Mapping[int, SchemaLookup] = NO_SCHEMAS
) -> Triage:
    """Validate each record alone, against the serving version's form: one bad record never affects
    the others. A record in the registry's wire format is read with its writer schema from
    `schemas` (predict/schema_cache.py: every id of the batch)."""
    requests: list[PredictionRequest] = []
    payloads: list[bytes | dict] = []
    formats: list[AnswerFormat] = []
    errors: list[PredictionError] = []
    error_formats: list[AnswerFormat] = []
    dead_letters: list[DeadLetter] = []
    decoder = decoder_of(form)
    for record in records:
        request_id = None
        answer_format = PLAIN
        value = record.value
        try:
            if value is not None and len(value) > max_bytes:
                # Refused before parsing: a huge record must not cost a full JSON parse.
                request_id = peek_request_id(value)
                raise MessageError("too_large", f"the message has {len(value)} bytes, the limit is {max_bytes}")
            if value is not None and wire.is_framed(value):
                answer_format = answer_format_of(value, schemas)
                request, payload = read_framed(value, schemas, decoder)
            else:
                request, payload = decoder.decode(value)
            requests.append(request)
            payloads.append(payload)
            formats.append(answer_format)
        except MessageError as error:
            request_id = request_id or error.request_id  # an id that breaks the rule, still safe to echo
            if request_id is None:
                dead_letters.append(DeadLetter.from_record(error, record.topic, record.partition, record.offset, value))
            else:
                errors.append(PredictionError(request_id, error.code, error.message))
                error_formats.append(answer_format)
    return Triage(
        tuple(requests), tuple(errors), tuple(dead_letters), tuple(payloads), tuple(formats), tuple(error_formats)
    )


def answer_format_of(value: bytes, schemas: Mapping[int, SchemaLookup]) -> AnswerFormat:
    """The format a wire-format record's answer goes in: its schema's, or for an id that cannot be
    read, the format its payload looks like."""
    found = schemas.get(wire.schema_id_of(value))
    if isinstance(found, WriterSchema):
        return found.format
    return "json" if wire.payload_of(value)[:1] == b"{" else "avro"


def read_framed(
    value: bytes, schemas: Mapping[int, SchemaLookup], decoder: RequestDecoder
) -> tuple[PredictionRequest, bytes | dict]:
    """A wire-format record's request (and what a challenger re-reads), or MessageError
    (`schema_mismatch`, `schema_unavailable`, or the JSON codes for a JSON payload) carrying the
    request id when one can be read."""
    schema_id, payload = wire.schema_id_of(value), wire.payload_of(value)
    found = schemas.get(schema_id) or MissingSchema(schema_id, "schema_unavailable", "schema id not looked up")
    try:
        if isinstance(found, MissingSchema):
            raise MessageError(found.code, found.message)
        if found.avro is None:
            return decoder.decode(payload)
        data = found.avro.read(payload, decoder.form.required)
        return PredictionRequest.from_dict(data, decoder.form), data
    except MessageError as error:
        error.request_id = error.request_id or _readable_id(payload)
        raise


def _readable_id(payload: bytes) -> str | None:
    """The request id of a payload that cannot be read whole: a JSON one's, or the string an Avro
    record starts with (the request id, in the schemas this pipeline registers)."""
    if payload[:1] == b"{":
        return peek_request_id(payload)
    text = avro_string_prefix(payload)
    if text is None:
        return None
    try:
        return read_request_id({"request_id": text})
    except MessageError as error:
        return error.request_id


def canary_share(request_id: str) -> float:
    """A number in [0, 1) fixed by the request id alone (a hash, not Python's per-process hash()), so
    every predictor, and every retry of a request, puts it on the same side of a canary split."""
    digest = hashlib.blake2b(request_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def role_of(request_id: str, canary_fraction: float) -> Role:
    """Which model answers a request: the challenger for the `canary_fraction` share of ids."""
    return CHALLENGER if canary_fraction > 0 and canary_share(request_id) < canary_fraction else CHAMPION


def run_model(requests: Sequence[PredictionRequest], scorer: Scorer, rows: tuple[int, ...] | None = None) -> Scored:
    """One model call for all requests. Raises whatever the model raises."""
    started = time.perf_counter()
    matrix = scorer.transform([request.features for request in requests])
    transformed = time.perf_counter()
    probabilities = scorer.predict_matrix(matrix)
    predicted = time.perf_counter()
    return Scored(
        tuple(requests),
        probabilities,
        scorer.version,
        scorer.engine,
        transformed - started,
        predicted - transformed,
        matrix,
        rows,
    )


def challenger_requests(
    requests: Sequence[PredictionRequest], payloads: Sequence[bytes | dict], champion: Scorer, challenger: Scorer
) -> tuple[list[PredictionRequest], tuple[int, ...] | None]:
    """The requests the challenger scores, validated against its own form, and which of the batch's
    they are (None: all of them, when both versions take the same form)."""
    if challenger.form is champion.form or challenger.spec.form_digest() == champion.spec.form_digest():
        return list(requests), None
    valid, rows = [], []
    decoder = decoder_of(challenger.form)
    for index, payload in enumerate(payloads):
        try:
            if isinstance(payload, dict):
                valid.append(PredictionRequest.from_dict(payload, challenger.form))
            else:
                valid.append(decoder.decode(payload)[0])
            rows.append(index)
        except MessageError:
            continue  # the champion answers it; the challenger has no pair for it
    return valid, tuple(rows)


def explanations_of(scored: Scored, scorer: Scorer, asking: Sequence[int], explain_top: int) -> dict[int, Explanation]:
    """The explanations of the requests at indexes `asking`, by the model that scored them."""
    if not asking:
        return {}
    assert scored.matrix is not None
    rows = scorer.contributions(scored.matrix[list(asking)])
    names = scorer.feature_names
    return {index: summarise(row, names, explain_top) for index, row in zip(asking, rows, strict=True)}


def score(
    requests: Sequence[PredictionRequest],
    scorer: Scorer,
    explain_top: int,
    challenger: Challenger | None = None,
    payloads: Sequence[bytes | dict] = (),
) -> tuple[tuple[Prediction, ...], Scored | None, Scored | None]:
    """Answers from the champion (and from the challenger for its canary share), what the champion
    scored, and what the challenger scored (every request it can read, for the paired tally). Raises
    whatever the champion raises; a failing challenger is left out of the batch."""
    if not requests:
        return (), None, None
    champion = run_model(requests, scorer)
    shadow = None
    if challenger is not None:
        try:
            theirs, rows = challenger_requests(requests, payloads, scorer, challenger.scorer)
            shadow = run_model(theirs, challenger.scorer, rows) if theirs else None
        except Exception as error:  # a challenger's bug must not cost the champion's answers
            log.error("challenger failed, the champion answers version=%s error=%r", challenger.scorer.version, error)
    # Position in the batch -> position in the challenger's scores, for the requests it scored.
    paired = {row: at for at, row in enumerate(shadow.rows)} if shadow is not None and shadow.rows is not None else None
    fraction = challenger.canary_fraction if challenger is not None and shadow is not None else 0.0
    roles = [CHAMPION] * len(requests)
    probabilities = champion.probabilities
    if shadow is not None and fraction > 0:
        roles = [
            role_of(request.request_id, fraction) if paired is None or index in paired else CHAMPION
            for index, request in enumerate(requests)
        ]
        theirs_aligned = shadow.probabilities if paired is None else _aligned(shadow, paired, len(requests))
        probabilities = np.where(np.array(roles) == CHALLENGER, theirs_aligned, champion.probabilities)
    explanations: dict[int, Explanation] = {}
    asking = [index for index, request in enumerate(requests) if request.explain]
    if asking:
        explanations = explanations_of(champion, scorer, [i for i in asking if roles[i] == CHAMPION], explain_top)
        if challenger is not None and shadow is not None:
            by_challenger = [i for i in asking if roles[i] == CHALLENGER]
            positions = by_challenger if paired is None else [paired[i] for i in by_challenger]
            found = explanations_of(shadow, challenger.scorer, positions, explain_top)
            explanations |= {batch_index: found[at] for batch_index, at in zip(by_challenger, positions, strict=True)}
    versions = {CHAMPION: scorer.version, CHALLENGER: challenger.scorer.version if challenger else 0}
    answers = tuple(
        Prediction(
            request.request_id,
            int(probability >= DECISION_THRESHOLD),
            probability,
            versions[role],
            explanations.get(index),
            role,
        )
        for index, (request, probability, role) in enumerate(zip(requests, probabilities.tolist(), roles, strict=True))
    )
    return answers, champion, shadow


def _aligned(shadow: Scored, paired: dict[int, int], size: int) -> np.ndarray:
    """A challenger's scores at the batch's positions (NaN where it scored nothing)."""
    aligned = np.full(size, np.nan)
    for row, at in paired.items():
        aligned[row] = shadow.probabilities[at]
    return aligned


def scoring_us_per_request(scored: Scored) -> float:
    """A model's scoring time (transform and predict) per request of its batch, in microseconds."""
    return (scored.transform_s + scored.predict_s) / max(len(scored.requests), 1) * 1e6


def observations_of(
    requests: Sequence[PredictionRequest], *scored: Scored | None, on_trial: int | None = None
) -> tuple[Observation, ...]:
    """The labelled requests, with what each model that scored them said and its time per request
    (the paired tally of a rollout, when two models scored the request); a request the version
    `on_trial` was asked to score and did not is marked `missed` (the trial's error rate)."""
    models = [s for s in scored if s is not None]
    by_model = [dict(zip(s.rows or range(len(requests)), s.probabilities.tolist(), strict=True)) for s in models]
    took = {s.model_version: round(scoring_us_per_request(s), 2) for s in models}
    observations = []
    for i, request in enumerate(requests):
        if request.label is None:
            continue
        scores = {s.model_version: said[i] for s, said in zip(models, by_model, strict=True) if i in said}
        paired = scores if len(scores) > 1 else None
        missed = on_trial if on_trial is not None and on_trial not in scores else None
        observations.append(
            Observation(
                request.request_id,
                request.features,
                request.label,
                paired,
                {version: took[version] for version in paired} if paired else None,
                missed,
            )
        )
    return tuple(observations)


def decide(
    records: Sequence[Record],
    scorer: Scorer,
    max_bytes: int,
    explain_top: int,
    challenger: Challenger | None = None,
    schemas: Mapping[int, SchemaLookup] | None = None,
) -> BatchOutcome:
    """The outcome of one batch. A scoring failure answers each valid request with an
    `internal_error` instead of leaving it unanswered; its observations are still kept (they are
    valid training data whatever the model did)."""
    started = time.perf_counter()
    sorted_batch = triage(records, max_bytes, scorer.form, schemas or NO_SCHEMAS)
    validate_s = time.perf_counter() - started
    try:
        answers, scored, shadow = score(sorted_batch.requests, scorer, explain_top, challenger, sorted_batch.payloads)
    except Exception as error:  # a model bug must not leave requests unanswered
        failure = f"scoring failed: {error!r}"
        failed = tuple(PredictionError(r.request_id, "internal_error", failure) for r in sorted_batch.requests)
        return BatchOutcome(
            errors=sorted_batch.errors + failed,
            dead_letters=sorted_batch.dead_letters,
            observations=observations_of(sorted_batch.requests),
            scoring_failure=failure,
            validate_s=validate_s,
            error_formats=sorted_batch.error_formats + sorted_batch.formats,
        )
    return BatchOutcome(
        answers,
        sorted_batch.errors,
        sorted_batch.dead_letters,
        observations_of(
            sorted_batch.requests, scored, shadow, on_trial=challenger.scorer.version if challenger else None
        ),
        scored,
        shadow,
        validate_s=validate_s,
        answer_formats=sorted_batch.formats,
        error_formats=sorted_batch.error_formats,
    )


def retrain_ends(observation_offsets: Iterable[int], every: int) -> list[int]:
    """The retrain requests due for these acknowledged observation offsets: one each time the
    observations log (one partition, shared by every predictor) completes a multiple of `every`.
    The count is global, so N predictors do not retrain N times; each end offset belongs to exactly
    one observation, so exactly one predictor asks for it. `every` 0: the count trigger is off."""
    if every <= 0:
        return []
    return sorted(offset + 1 for offset in observation_offsets if (offset + 1) % every == 0)


def retrain_ends_in_transaction(observation_offsets: Sequence[int], every: int) -> list[int]:
    """The retrain requests due for the observations one committed transaction wrote (exactly-once
    mode). Each transaction's commit marker takes an offset in the observations log, usually the one
    after its last record, so a multiple of `every` may fall on a marker: a transaction answers for
    every multiple among its own offsets and the one after them. Each request's end offset is the
    offset after the transaction's last observation (a real record, so a reader can stop there). A
    multiple that falls between two predictors' concurrent transactions is left to the next one.
    `every` 0: the count trigger is off."""
    if not observation_offsets or every <= 0:
        return []
    first, last = min(observation_offsets), max(observation_offsets)
    crossed = [m for m in range(first + 1, last + 3) if m % every == 0]
    return [last + 1] if crossed else []
