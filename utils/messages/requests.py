"""The app's conversation with the predictor, and what it leaves behind: requests
(`app_messages`), answers (`predictions`), observations kept for retraining (`observations`) and
dead letters (`app_messages_dlq`)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from utils.form import Form
from utils.messages.codec import MessageError

MAX_REQUEST_ID_LENGTH = 128

Role = Literal["champion", "challenger"]
CHAMPION: Role = "champion"
CHALLENGER: Role = "challenger"  # a version on trial during a shadow or canary rollout


def read_request_id(payload: Mapping[str, Any]) -> str:
    """The request id, if it follows the rule: a string of 1 to MAX_REQUEST_ID_LENGTH characters,
    not only spaces, every one printable (Python's str.isprintable(): no control, format, line or
    paragraph separator, private-use, surrogate or unassigned character; the only space allowed is
    the ASCII one). So an id can be logged as it is and cannot forge or hide a log line.

    An id of the right type and length that breaks the rule raises `invalid_request_id` with the id
    attached (`MessageError.request_id`): it can still be echoed in a JSON answer, whose encoding
    escapes it. Anything else cannot be answered: `missing_request_id` (not a string, empty) or
    `invalid_request_id` (too long to echo), both without an id."""
    request_id = payload.get("request_id")
    if not isinstance(request_id, str) or not request_id.strip():
        raise MessageError("missing_request_id", "request_id must be a non-empty string")
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise MessageError("invalid_request_id", f"request_id is longer than {MAX_REQUEST_ID_LENGTH} characters")
    if not request_id.isprintable():
        position = next(i for i, character in enumerate(request_id) if not character.isprintable())
        raise MessageError(
            "invalid_request_id",
            f"request_id may only hold printable characters; character {position} is "
            f"{request_id[position].encode('unicode_escape').decode('ascii')}",
            request_id=request_id,
        )
    return request_id


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

    def to_dict(self, form: Form | None = None) -> dict:
        """The request as an app sends it; a labelled one names its label as `form`'s spec does."""
        data = dict(self.features)
        if self.label is not None:
            if form is None:
                raise ValueError("a labelled request needs its form to spell the label")
            label = form.spec.label
            data[label.column] = label.positive[0] if self.label else label.negative[0]
        payload: dict[str, Any] = {"request_id": self.request_id, "data": data}
        if self.explain:
            payload["explain"] = True
        return payload

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any], form: Form) -> PredictionRequest:
        """A request read and validated against `form`; MessageError (with the request id when it is
        readable) if it does not follow it."""
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
                count = len(form.field_names)
                raise MessageError("invalid_type", f"data must be a JSON object with the {count} fields of the form")
            explain = payload.get("explain", False)
            if not isinstance(explain, bool):
                raise MessageError("invalid_type", "explain must be true or false")
            return cls(request_id, form.features(data), form.label(data), explain)
        except MessageError as error:
            error.request_id = request_id
            raise


_REQUEST_FIELDS = frozenset({"request_id", "data", "explain"})


@dataclass(frozen=True)
class Explanation:
    """Why the model said what it said: SHAP contributions (LightGBM's `pred_contrib`) to the raw
    score (log-odds of the positive answer), the largest first, in the model's input columns: the
    form's fields and the crossed ones, named `<field>_x_<field>`. `top` + `other` + `bias` = `raw_score`."""

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


@dataclass(frozen=True)
class Prediction:
    """`predictions`: the answer to one request, and which model gave it in which role."""

    request_id: str
    prediction: int
    probability: float
    model_version: int
    explanation: Explanation | None = None  # only when the request asked for it
    role: Role = CHAMPION

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
            explanation=Explanation.from_dict(payload["explanation"]) if payload.get("explanation") else None,
            role=CHALLENGER if payload.get("role") == CHALLENGER else CHAMPION,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise MessageError("invalid_answer", f"not a prediction nor an error answer: {error!r}") from error


@dataclass(frozen=True)
class Observation:
    """`observations`: a labelled, validated request kept for retraining (Kafka is the durable log).

    During a rollout it also carries what the champion and the challenger said (`scores`: model
    version -> probability) and how long each took per request of its batch (`scoring_us`), or
    which challenger was asked to score it and did not (`missed`: it failed, or its form refused
    the request): the paired live tally that judges the challenger is this log."""

    request_id: str
    features: dict[str, Any]
    label: int
    scores: dict[int, float] | None = None
    scoring_us: dict[int, float] | None = None
    missed: int | None = None

    def to_dict(self) -> dict:
        payload: dict[str, Any] = {"request_id": self.request_id, "features": self.features, "label": self.label}
        if self.scores:
            payload["scores"] = {str(version): probability for version, probability in self.scores.items()}
        if self.scoring_us:
            payload["scoring_us"] = {str(version): took for version, took in self.scoring_us.items()}
        if self.missed is not None:
            payload["missed"] = self.missed
        return payload

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any], form: Form | None = None) -> Observation:
        """With a form, its features are validated again (a retrain reads only what fits the serving
        spec); without one they are kept as they are (the rollout tally reads only scores and labels)."""
        try:
            features = form.features(payload["features"]) if form is not None else dict(payload["features"])
            label = int(payload["label"])
            scores = {int(v): float(p) for v, p in dict(payload["scores"]).items()} if "scores" in payload else None
            took = payload.get("scoring_us")
            scoring_us = {int(v): float(us) for v, us in dict(took).items()} if took is not None else None
            missed = int(payload["missed"]) if payload.get("missed") is not None else None
            return cls(read_request_id(payload), features, label, scores, scoring_us, missed)
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
