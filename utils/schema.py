"""The census form a request carries: its fields, their bounds, and the validation every service
applies to it. Validation raises only `MessageError`, whose `code` and `message` say what the sender
must fix."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from utils.messages.codec import MessageError

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
_REQUIRED = frozenset(FEATURE_FIELDS)
_ALLOWED = _REQUIRED | {LABEL_FIELD}


def validate_features(data: Mapping[str, Any]) -> dict[str, Any]:
    keys = data.keys()
    if not _REQUIRED <= keys:  # set operations first: this runs once per request
        missing = [name for name in FEATURE_FIELDS if name not in data]
        raise MessageError("missing_field", f"data lacks {missing}")
    if not keys <= _ALLOWED:
        unknown = sorted(set(keys) - _ALLOWED)
        raise MessageError("unknown_field", f"data has unknown field(s) {unknown}; expected {list(FEATURE_FIELDS)}")
    features: dict[str, Any] = {}
    for name, (low, high) in NUMERIC_FIELDS.items():
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MessageError("invalid_type", f"{name} must be a number, got {type(value).__name__} {_preview(value)}")
        if not math.isfinite(value) or not low <= value <= high:  # NaN, Infinity: Python's json.dumps writes them
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
