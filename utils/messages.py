"""The JSON payload of every topic, as small typed schemas used by producers and consumers alike.

Decoding never raises anything but `MessageError`, whose `code` and `message` say what the sender
must fix; the original exception is chained with `raise ... from`.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_REQUEST_ID_LENGTH = 128
MAX_TEXT_LENGTH = 100
LABEL_FIELD = "income_bracket"

# (lowest, highest) accepted value of each numeric field: generous bounds around the census data,
# tight enough to reject typos such as an age of 4000.
NUMERIC_FIELDS: dict[str, tuple[float, float]] = {
    "age": (0, 130),
    "fnlwgt": (0, 1e8),
    "education_num": (0, 30),
    "capital_gain": (0, 1e7),
    "capital_loss": (0, 1e7),
    "hours_per_week": (0, 168),
}
CATEGORICAL_FIELDS: tuple[str, ...] = (
    "workclass",
    "education",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "native_country",
)
FEATURE_FIELDS: tuple[str, ...] = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
)
LABELS = {"<=50K": 0, "<=50K.": 0, ">50K": 1, ">50K.": 1}


class MessageError(ValueError):
    """A payload that does not follow its schema. `code` is stable; `message` is for humans."""

    def __init__(self, code: str, message: str, request_id: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


def encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode_object(raw: bytes | None) -> dict:
    """Bytes -> JSON object, or MessageError saying why not."""
    if raw is None:
        raise MessageError("empty_message", "the record has no value")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MessageError(
            "invalid_encoding", f"the value is not UTF-8 text ({error.reason} at byte {error.start})"
        ) from error
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, RecursionError) as error:
        raise MessageError("invalid_json", f"the value is not valid JSON ({error})") from error
    except ValueError as error:
        raise MessageError("invalid_json", str(error)) from error
    if not isinstance(payload, dict):
        raise MessageError("not_an_object", f"expected a JSON object, got {type(payload).__name__}")
    return payload


def _reject_constant(name: str) -> float:
    raise ValueError(f"the value contains {name}, which is not valid JSON")


def read_request_id(payload: Mapping[str, Any]) -> str:
    request_id = payload.get("request_id")
    if not isinstance(request_id, str) or not request_id.strip():
        raise MessageError("missing_request_id", "request_id must be a non-empty string")
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise MessageError("missing_request_id", f"request_id is longer than {MAX_REQUEST_ID_LENGTH} characters")
    return request_id


@dataclass(frozen=True)
class PredictionRequest:
    """`app_messages`: one user's form. `label` is 0/1 when the app already knows the answer."""

    request_id: str
    features: dict[str, Any]
    label: int | None = None

    def to_dict(self) -> dict:
        data = dict(self.features)
        if self.label is not None:
            data[LABEL_FIELD] = ">50K" if self.label else "<=50K"
        return {"request_id": self.request_id, "data": data}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> PredictionRequest:
        request_id = read_request_id(payload)
        try:
            extra = sorted(set(payload) - {"request_id", "data"})
            if extra:
                raise MessageError(
                    "unknown_field", f"unexpected top-level field(s) {extra}; send only request_id and data"
                )
            data = payload.get("data")
            if not isinstance(data, dict):
                raise MessageError("invalid_type", "data must be a JSON object with the 14 census fields")
            return cls(request_id, validate_features(data), read_label(data))
        except MessageError as error:
            error.request_id = request_id
            raise


def validate_features(data: Mapping[str, Any]) -> dict[str, Any]:
    missing = [name for name in FEATURE_FIELDS if name not in data]
    if missing:
        raise MessageError("missing_field", f"data lacks {missing}")
    unknown = sorted(set(data) - set(FEATURE_FIELDS) - {LABEL_FIELD})
    if unknown:
        raise MessageError("unknown_field", f"data has unknown field(s) {unknown}; expected {list(FEATURE_FIELDS)}")
    features: dict[str, Any] = {}
    for name, (low, high) in NUMERIC_FIELDS.items():
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MessageError("invalid_type", f"{name} must be a number, got {type(value).__name__} {_preview(value)}")
        if not math.isfinite(value) or not low <= value <= high:
            raise MessageError("out_of_range", f"{name} must be between {low:g} and {high:g}, got {value!r}")
        features[name] = float(value)
    for name in CATEGORICAL_FIELDS:
        value = data[name]
        if value is not None and not isinstance(value, str):
            raise MessageError(
                "invalid_type", f"{name} must be a string or null, got {type(value).__name__} {_preview(value)}"
            )
        if value is not None and len(value) > MAX_TEXT_LENGTH:
            raise MessageError("out_of_range", f"{name} is longer than {MAX_TEXT_LENGTH} characters")
        # A null or unseen category is valid: the preprocessor maps it to its "unknown" code.
        features[name] = value.strip() if value is not None else None
    return features


def read_label(data: Mapping[str, Any]) -> int | None:
    label = data.get(LABEL_FIELD)
    if label is None:
        return None
    if isinstance(label, str) and label.strip() in LABELS:
        return LABELS[label.strip()]
    if label in (0, 1) and not isinstance(label, float | bool):
        return int(label)
    raise MessageError("invalid_label", f"{LABEL_FIELD} must be '<=50K', '>50K', 0 or 1, got {_preview(label)}")


def _preview(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Prediction:
    """`predictions`: the answer to one request."""

    request_id: str
    prediction: int
    probability: float
    model_version: int

    def to_dict(self) -> dict:
        return asdict(self)


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
        )
    except (KeyError, TypeError, ValueError) as error:
        raise MessageError("invalid_answer", f"not a prediction nor an error answer: {error!r}") from error


@dataclass(frozen=True)
class Observation:
    """`observations`: a labelled, validated request kept for retraining (Kafka is the durable log)."""

    request_id: str
    features: dict[str, Any]
    label: int

    def to_dict(self) -> dict:
        return {"request_id": self.request_id, "features": self.features, "label": self.label}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Observation:
        try:
            features = validate_features(payload["features"])
            label = int(payload["label"])
            return cls(read_request_id(payload), features, label)
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


ControlMessage = RetrainRequest | TrainingCompleted | ModelRefused


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
        if event == MODEL_REFUSED:
            return ModelRefused(int(payload["version"]), str(payload["reason"]), str(payload.get("refused_by", "")))
    except (KeyError, TypeError, ValueError) as error:
        raise MessageError("invalid_control", f"bad {event} message: {error!r}") from error
    raise MessageError("invalid_control", f"unknown event {event!r}")
