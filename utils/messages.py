"""The JSON payload of every topic, as small typed schemas used by producers and consumers alike.

Decoding never raises anything but `MessageError`, whose `code` and `message` say what the sender
must fix; the original exception is chained with `raise ... from`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from utils.schema import (
    LABEL_FIELD,
    MAX_REQUEST_ID_LENGTH,
    MessageError,
    read_label,
    read_request_id,
    validate_features,
)

# Built once: json.dumps with options builds a new encoder per call, which shows on the hot path.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def encode(payload: Mapping[str, Any]) -> bytes:
    return _ENCODER.encode(payload).encode("utf-8")


def decode_object(raw: bytes | None) -> dict:
    """Bytes -> JSON object, or MessageError saying why not.

    NaN, Infinity and -Infinity (which Python's json.dumps writes) are read as floats, so that the
    schema can name the field that holds one instead of refusing the whole record."""
    if raw is None:
        raise MessageError("empty_message", "the record has no value")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MessageError(
            "invalid_encoding", f"the value is not UTF-8 text ({error.reason} at byte {error.start})"
        ) from error
    try:
        payload = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise MessageError("invalid_json", f"the value is not valid JSON ({error})") from error
    if not isinstance(payload, dict):
        raise MessageError("not_an_object", f"expected a JSON object, got {type(payload).__name__}")
    return payload


# A top-level "request_id" string near either end of an oversized record: enough to answer it
# `too_large` without parsing megabytes. An id that is not found there makes it a dead letter.
_REQUEST_ID = re.compile(rb'"request_id"\s*:\s*("(?:[^"\\]|\\.){1,%d}")' % (MAX_REQUEST_ID_LENGTH * 6))
PEEK_BYTES = 4096


def peek_request_id(raw: bytes) -> str | None:
    """The request id of a record too large to parse, if one can be read from its first or last
    PEEK_BYTES bytes; None otherwise."""
    for window in (raw[:PEEK_BYTES], raw[-PEEK_BYTES:]):
        found = _REQUEST_ID.search(window)
        if found is None:
            continue
        try:
            return read_request_id({"request_id": json.loads(found.group(1))})
        except (ValueError, MessageError):
            return None
    return None


@dataclass(frozen=True)
class PredictionRequest:
    """`app_messages`: one user's form. `label` is 0/1 when the app already knows the answer."""

    request_id: str
    features: dict[str, Any]
    label: int | None = None
    explain: bool = False  # the answer should say which fields weighed most

    def to_dict(self) -> dict:
        data = dict(self.features)
        if self.label is not None:
            data[LABEL_FIELD] = ">50K" if self.label else "<=50K"
        payload: dict[str, Any] = {"request_id": self.request_id, "data": data}
        if self.explain:
            payload["explain"] = True
        return payload

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> PredictionRequest:
        request_id = read_request_id(payload)
        try:
            if not payload.keys() <= _REQUEST_FIELDS:
                extra = sorted(set(payload) - _REQUEST_FIELDS)
                raise MessageError(
                    "unknown_field",
                    f"unexpected top-level field(s) {extra}; send request_id, data and optionally explain",
                )
            data = payload.get("data")
            if not isinstance(data, dict):
                raise MessageError("invalid_type", "data must be a JSON object with the 14 census fields")
            explain = payload.get("explain", False)
            if not isinstance(explain, bool):
                raise MessageError("invalid_type", "explain must be true or false")
            return cls(request_id, validate_features(data), read_label(data), explain)
        except MessageError as error:
            error.request_id = request_id
            raise


_REQUEST_FIELDS = frozenset({"request_id", "data", "explain"})


@dataclass(frozen=True)
class Explanation:
    """Why the model said what it said: SHAP contributions (LightGBM's `pred_contrib`) to the raw
    score (log-odds of high income), the largest first, in the model's input columns: the 14 form
    fields and the two crossed ones, named `<field>_x_<field>`. `top` + `other` + `bias` = `raw_score`."""

    raw_score: float
    bias: float
    top: tuple[tuple[str, float], ...]
    other: float  # the sum of every contribution not in `top`

    def to_dict(self) -> dict:
        return {
            "raw_score": self.raw_score,
            "bias": self.bias,
            "top": [{"feature": name, "contribution": value} for name, value in self.top],
            "other": self.other,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Explanation:
        top = tuple((str(item["feature"]), float(item["contribution"])) for item in payload["top"])
        return cls(float(payload["raw_score"]), float(payload["bias"]), top, float(payload["other"]))


CHAMPION = "champion"
CHALLENGER = "challenger"  # a version on trial during a shadow or canary rollout


@dataclass(frozen=True)
class Prediction:
    """`predictions`: the answer to one request, and which model gave it in which role."""

    request_id: str
    prediction: int
    probability: float
    model_version: int
    explanation: Explanation | None = None  # only when the request asked for it
    role: str = CHAMPION

    def to_dict(self) -> dict:
        # Spelled out: asdict() deep-copies and is several times slower, once per answer.
        answer: dict[str, Any] = {
            "request_id": self.request_id,
            "prediction": self.prediction,
            "probability": self.probability,
            "model_version": self.model_version,
            "role": self.role,
        }
        if self.explanation is not None:
            answer["explanation"] = self.explanation.to_dict()
        return answer


@dataclass(frozen=True)
class PredictionError:
    """`predictions`: the answer to a request that could not be scored."""

    request_id: str
    code: str
    message: str

    def to_dict(self) -> dict:
        return {"request_id": self.request_id, "error": {"code": self.code, "message": self.message}}


def answer_from_dict(payload: Mapping[str, Any]) -> Prediction | PredictionError:
    """Read a record of `predictions` (either kind of answer)."""
    try:
        if "error" in payload:
            error = payload["error"]
            return PredictionError(str(payload["request_id"]), str(error["code"]), str(error["message"]))
        return Prediction(
            request_id=str(payload["request_id"]),
            prediction=int(payload["prediction"]),
            probability=float(payload["probability"]),
            model_version=int(payload["model_version"]),
            explanation=Explanation.from_dict(payload["explanation"]) if "explanation" in payload else None,
            role=str(payload.get("role", CHAMPION)),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise MessageError("invalid_answer", f"not a prediction nor an error answer: {error!r}") from error


@dataclass(frozen=True)
class Observation:
    """`observations`: a labelled, validated request kept for retraining (Kafka is the durable log).

    During a rollout it also carries what the champion and the challenger said (`scores`: model
    version -> probability): the paired live tally that judges the challenger is this log."""

    request_id: str
    features: dict[str, Any]
    label: int
    scores: dict[int, float] | None = None

    def to_dict(self) -> dict:
        payload: dict[str, Any] = {"request_id": self.request_id, "features": self.features, "label": self.label}
        if self.scores:
            payload["scores"] = {str(version): probability for version, probability in self.scores.items()}
        return payload

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Observation:
        try:
            features = validate_features(payload["features"])
            label = int(payload["label"])
            scores = {int(v): float(p) for v, p in dict(payload["scores"]).items()} if "scores" in payload else None
            return cls(read_request_id(payload), features, label, scores)
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, MessageError):
                raise
            raise MessageError("invalid_observation", repr(error)) from error


@dataclass(frozen=True)
class DeadLetter:
    """`app_messages_dlq`: a record that could not be answered because its request id is unreadable."""

    code: str
    reason: str
    topic: str
    partition: int
    offset: int
    raw_size: int
    raw_base64: str

    @classmethod
    def from_record(
        cls, error: MessageError, topic: str, partition: int, offset: int, raw: bytes | None, keep_bytes: int = 1024
    ) -> DeadLetter:
        raw = raw or b""
        return cls(
            error.code,
            error.message,
            topic,
            partition,
            offset,
            len(raw),
            base64.b64encode(raw[:keep_bytes]).decode("ascii"),
        )

    def to_dict(self) -> dict:
        return asdict(self)


# Control messages on `retrain_topic`. One topic carries the whole conversation between predictors,
# trainer and operators, in order; `event` says which schema a record follows.
RETRAIN_REQUESTED = "retrain_requested"
TRAINING_COMPLETED = "training_completed"
MODEL_REFUSED = "model_refused"
MODEL_ROLLED_BACK = "model_rolled_back"
CHALLENGER_STARTED = "challenger_started"
ROLLOUT_DECIDED = "rollout_decided"
SHADOW = "shadow"  # the challenger scores every request beside the champion; the champion answers
CANARY = "canary"  # as shadow, and the challenger answers a stable share of the requests
DIRECT = "direct"  # no trial: a version that passes the holdout gate serves at once


@dataclass(frozen=True)
class RetrainRequest:
    """Retrain on every observation before `observations_end_offset` (exclusive)."""

    observations_end_offset: int
    requested_by: str = ""
    event: str = field(default=RETRAIN_REQUESTED, init=False)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainingCompleted:
    """A new version is in the model store. Carries its number, never a path."""

    version: int
    promoted: bool
    metrics: dict[str, float]
    trained_rows: int
    observations_end_offset: int
    event: str = field(default=TRAINING_COMPLETED, init=False)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModelRefused:
    """A predictor would not serve a version (failed checksum, schema or smoke prediction)."""

    version: int
    reason: str
    refused_by: str = ""
    event: str = field(default=MODEL_REFUSED, init=False)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModelRolledBack:
    """An operator made an earlier (or any verified) version the serving one: predictors swap to it."""

    version: int
    previous_version: int | None = None
    requested_by: str = ""
    event: str = field(default=MODEL_ROLLED_BACK, init=False)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ChallengerStarted:
    """A version on trial beside the champion (`mode` shadow or canary). The model store keeps the
    same record in its CHALLENGER file, so a predictor that starts later joins the rollout."""

    version: int
    champion_version: int
    mode: str
    canary_fraction: float = 0.0  # share of requests the challenger answers (canary only)
    observations_start: int = 0  # the paired tally reads the observations log from this offset
    event: str = field(default=CHALLENGER_STARTED, init=False)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> ChallengerStarted:
        try:
            mode = str(payload["mode"])
            fraction = float(payload.get("canary_fraction", 0.0))
            if mode not in (SHADOW, CANARY) or not 0.0 <= fraction <= 1.0:
                raise ValueError(f"mode {mode!r}, canary_fraction {fraction}")
            return cls(
                int(payload["version"]),
                int(payload["champion_version"]),
                mode,
                fraction if mode == CANARY else 0.0,
                int(payload.get("observations_start", 0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise MessageError("invalid_control", f"bad {CHALLENGER_STARTED} message: {error!r}") from error


@dataclass(frozen=True)
class RolloutDecided:
    """The trial of `version` is over: promoted (predictors serve it) or not (they drop it)."""

    version: int
    promoted: bool
    decided_by: str  # "live judgement", "operator", "superseded", "rollback"
    reason: str = ""
    event: str = field(default=ROLLOUT_DECIDED, init=False)

    def to_dict(self) -> dict:
        return asdict(self)


ControlMessage = (
    RetrainRequest | TrainingCompleted | ModelRefused | ModelRolledBack | ChallengerStarted | RolloutDecided
)


def serving_version(message: ControlMessage) -> int | None:
    """The version predictors must serve after this control message, or None if it changes nothing."""
    if isinstance(message, TrainingCompleted) and message.promoted:
        return message.version
    if isinstance(message, ModelRolledBack):
        return message.version
    if isinstance(message, RolloutDecided) and message.promoted:
        return message.version
    return None


def controls_of(values: Iterable[bytes | None]) -> list[ControlMessage]:
    """The readable control messages among these record values, in order; the others are skipped
    (the live readers log them)."""
    messages: list[ControlMessage] = []
    for value in values:
        try:
            messages.append(control_from_dict(decode_object(value)))
        except MessageError:
            continue
    return messages


def already_announced(messages: Iterable[ControlMessage], version: int, serving: bool) -> bool:
    """True if the last `training_completed` of `version` among these messages says `serving`: a
    trainer restarted after announcing it must not announce it again."""
    last = None
    for message in messages:
        if isinstance(message, TrainingCompleted) and message.version == version:
            last = message.promoted
    return last is serving


def rollout_in_progress(messages: Iterable[ControlMessage]) -> ChallengerStarted | None:
    """The rollout still going on at the end of these control messages (in topic order), or None."""
    rollout: ChallengerStarted | None = None
    for message in messages:
        if isinstance(message, ChallengerStarted):
            rollout = message
        elif isinstance(message, RolloutDecided) and rollout is not None and message.version == rollout.version:
            rollout = None
    return rollout


def control_from_dict(payload: Mapping[str, Any]) -> ControlMessage:
    event = payload.get("event")
    try:
        if event == RETRAIN_REQUESTED:
            return RetrainRequest(int(payload["observations_end_offset"]), str(payload.get("requested_by", "")))
        if event == TRAINING_COMPLETED:
            return TrainingCompleted(
                version=int(payload["version"]),
                promoted=bool(payload["promoted"]),
                metrics={str(k): float(v) for k, v in dict(payload.get("metrics", {})).items()},
                trained_rows=int(payload["trained_rows"]),
                observations_end_offset=int(payload["observations_end_offset"]),
            )
        if event == MODEL_ROLLED_BACK:
            previous = payload.get("previous_version")
            return ModelRolledBack(
                int(payload["version"]),
                None if previous is None else int(previous),
                str(payload.get("requested_by", "")),
            )
        if event == CHALLENGER_STARTED:
            return ChallengerStarted.from_dict(payload)
        if event == ROLLOUT_DECIDED:
            return RolloutDecided(
                int(payload["version"]),
                bool(payload["promoted"]),
                str(payload.get("decided_by", "")),
                str(payload.get("reason", "")),
            )
        if event == MODEL_REFUSED:
            return ModelRefused(int(payload["version"]), str(payload["reason"]), str(payload.get("refused_by", "")))
    except (KeyError, TypeError, ValueError) as error:
        raise MessageError("invalid_control", f"bad {event} message: {error!r}") from error
    raise MessageError("invalid_control", f"unknown event {event!r}")
