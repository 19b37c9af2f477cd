"""The form a request carries, checked against a dataset spec (utils/spec.py): which fields it must
have, what each may hold, the label, and the request's JSON Schema. One `Form` per spec, built once:
validation runs once per request. It raises only `MessageError`, whose `code` and `message` say
what the sender must fix; the codes mean the same for every spec.

Values an app naturally sends for a CSV row are accepted:
- numeric fields take JSON numbers (not strings, not booleans), finite and within the spec's bounds;
  a numeric field that may be missing also takes null;
- categorical fields take strings (100 characters at most, stripped), null where the spec allows
  it, and, when the file's values look like numbers (a zip code, a day of the week), JSON numbers
  too, matched by their text form (3 -> "3", 2.5 -> "2.5", 3.0 -> "3"); a category the model has not
  seen, or a missing marker such as "?", is scored as unknown;
- the label (optional) takes its texts from the file; a 0/1 or true/false label also takes JSON
  0/1 and booleans, any other label JSON 0/1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from utils.messages.codec import MessageError
from utils.spec import DatasetSpec

MAX_TEXT_LENGTH = 100
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class Form:
    def __init__(self, spec: DatasetSpec):
        self.spec = spec
        self.field_names = spec.field_names
        self.label_column = spec.label.column
        self.required = frozenset(item.name for item in spec.fields if item.required)
        self.allowed = frozenset(self.field_names) | {self.label_column}
        self._numeric = [
            (item.name, float(item.minimum or 0.0), float(item.maximum or 0.0), item.nullable) for item in spec.numeric
        ]  # utils/spec.py `check`: every numeric field has both bounds
        self._categorical = [
            (item.name, item.nullable, frozenset(item.missing), item.number_like) for item in spec.categorical
        ]
        self._order = self.field_names
        self.labels = {text: 1 for text in spec.label.positive} | {text: 0 for text in spec.label.negative}
        self._label_is_binary = spec.label.kind in ("binary", "boolean")
        self._missing_names = [name for name in self.field_names if name in self.required]

    def features(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The form's values of a request's `data`, in the spec's field order (None: no value)."""
        keys = data.keys()
        if not self.required <= keys:  # set operations first: this runs once per request
            missing = [name for name in self._missing_names if name not in data]
            raise MessageError("missing_field", f"data lacks {missing}")
        if not keys <= self.allowed:
            unknown = sorted(set(keys) - self.allowed)
            raise MessageError(
                "unknown_field", f"data has unknown field(s) {unknown}; expected {list(self.field_names)}"
            )
        values: dict[str, Any] = {}
        for name, low, high, nullable in self._numeric:
            value = data.get(name)
            if value is None and nullable:
                values[name] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                allowed = "a number or null" if nullable else "a number"
                raise MessageError(
                    "invalid_type", f"{name} must be {allowed}, got {type(value).__name__} {_preview(value)}"
                )
            if not math.isfinite(value) or not low <= value <= high:  # NaN, Infinity: Python's json.dumps writes them
                raise MessageError("out_of_range", f"{name} must be between {low:g} and {high:g}, got {value!r}")
            values[name] = float(value)
        for name, nullable, markers, number_like in self._categorical:
            value = data.get(name)
            if isinstance(value, str):
                if len(value) > MAX_TEXT_LENGTH:
                    raise MessageError("out_of_range", f"{name} is longer than {MAX_TEXT_LENGTH} characters")
                text = value.strip()
                values[name] = None if text in markers else text  # an unseen category is valid: unknown
            elif value is None and nullable:
                values[name] = None
            elif (
                number_like and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            ):
                values[name] = number_text(value)
            else:
                allowed = "a string" + (" or a number" if number_like else "") + (" or null" if nullable else "")
                raise MessageError(
                    "invalid_type", f"{name} must be {allowed}, got {type(value).__name__} {_preview(value)}"
                )
        return {name: values[name] for name in self._order}

    def label(self, data: Mapping[str, Any]) -> int | None:
        """0 or 1 if the request carries the label, None if not."""
        label = data.get(self.label_column)
        return None if label is None else self.label_of(label)

    def label_of(self, label: Any) -> int:
        """0 or 1 for a label's value (not None)."""
        if isinstance(label, str) and label.strip() in self.labels:
            return self.labels[label.strip()]
        if isinstance(label, bool):
            if self._label_is_binary:
                return int(label)
        elif label in (0, 1) and (self._label_is_binary or not isinstance(label, float)):
            return int(label)
        texts = ", ".join(repr(text) for text in self.labels)
        extra = ", 0, 1, true or false" if self._label_is_binary else ", 0 or 1"
        raise MessageError("invalid_label", f"{self.label_column} must be {texts}{extra}, got {_preview(label)}")

    def json_schema(self) -> dict[str, Any]:
        """The request's JSON Schema (draft 2020-12), for app teams to validate on their side. It
        says what this form accepts; what it cannot say (an unseen category is still scored) it
        leaves open."""
        properties: dict[str, Any] = {}
        for item in self.spec.fields:
            if item.kind == "numeric":
                schema: dict[str, Any] = {"type": ["number", "null"] if item.nullable else "number"}
                schema |= {"minimum": _number(item.minimum), "maximum": _number(item.maximum)}
            else:
                types = ["string", *(["number"] if item.number_like else []), *(["null"] if item.nullable else [])]
                schema = {"type": types if len(types) > 1 else types[0], "maxLength": MAX_TEXT_LENGTH}
            properties[item.name] = schema
        labels: list[Any] = [*self.labels, 0, 1, *([True, False] if self._label_is_binary else []), None]
        properties[self.label_column] = {"enum": labels, "description": "the true answer, when the app knows it"}
        return {
            "$schema": JSON_SCHEMA_DIALECT,
            "title": f"{self.spec.name} prediction request",
            "type": "object",
            "required": ["request_id", "data"],
            "additionalProperties": False,
            "properties": {
                "request_id": {"type": "string", "minLength": 1, "maxLength": 128},
                "explain": {"type": "boolean", "description": "ask for the fields that weighed most"},
                "data": {
                    "type": "object",
                    "required": [item.name for item in self.spec.fields if item.required],
                    "additionalProperties": False,
                    "properties": properties,
                },
            },
        }


def number_text(value: float) -> str:
    """How a JSON number reads as a category: integers without a fraction, others as Python writes them."""
    if isinstance(value, int):
        return str(value)
    return str(int(value)) if value.is_integer() else repr(value)


def _number(value: float | None) -> float | int | None:
    return int(value) if value is not None and float(value).is_integer() else value


def _preview(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
