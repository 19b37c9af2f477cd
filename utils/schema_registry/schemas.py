"""The schemas a spec's requests and every answer are registered with, in JSON Schema or Avro, and
the conversions between Avro records and the JSON objects the rest of the pipeline reads.

A request in either format carries what a plain JSON request does: `request_id`, `data` (the
form's fields and, optionally, the label) and `explain`. The JSON Schema is the form's own
(utils/form.py), in draft-07, the dialect every registry's compatibility checker reads. Avro names
may hold only letters, digits and `_`: a field such as `education-num` is `education_num` in Avro,
and its own name is kept in the field's `x-field` attribute, which is how a reader maps it back.
Apps write the Avro names (`avro_request` does it for the sample app).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import fastavro

from utils.form import Form
from utils.messages.codec import MessageError
from utils.settings import SchemaFormat, Topics
from utils.spec import DatasetSpec, Field

JSON_SCHEMA_DRAFT_07 = "http://json-schema.org/draft-07/schema#"
AVRO_NAMESPACE = "kafka_ml_pipeline"  # one name for every spec: a new spec is judged on its fields alone
NAME_ATTRIBUTE = "x-field"


def subjects(topics: Topics) -> tuple[str, str]:
    """The registry's subjects of the requests and of the answers (the topic name strategy)."""
    return f"{topics.app_messages}-value", f"{topics.predictions}-value"


def request_schema(spec: DatasetSpec, schema_format: SchemaFormat) -> str:
    """The schema of the spec's requests, as the text registered under `<app topic>-value`."""
    if schema_format == "json":
        schema = Form(spec).json_schema() | {"$schema": JSON_SCHEMA_DRAFT_07}
    else:
        schema = _avro_request(spec)
    return json.dumps(schema, separators=(",", ":"))


def answer_schema(schema_format: SchemaFormat) -> str:
    """The schema of an answer (a prediction or an error), registered under `<predictions topic>-value`."""
    return json.dumps(_JSON_ANSWER if schema_format == "json" else _AVRO_ANSWER, separators=(",", ":"))


# --- Avro requests ---


def avro_names(spec: DatasetSpec) -> dict[str, str]:
    """Each data key of the spec (fields, then the label) -> its Avro name, unique within the record."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for name in [*spec.field_names, spec.label.column]:
        base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "_"
        if base[0].isdigit():
            base = "_" + base
        candidate, number = base, 2
        while candidate in taken:
            candidate, number = f"{base}_{number}", number + 1
        taken.add(candidate)
        names[name] = candidate
    return names


def _avro_field(name: str, avro_name: str, types: list[str], optional: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": avro_name}
    if optional:
        entry |= {"type": ["null", *types], "default": None}
    else:
        entry["type"] = types if len(types) > 1 else types[0]
    if avro_name != name:
        entry[NAME_ATTRIBUTE] = name
    return entry


def _avro_type(item: Field) -> list[str]:
    if item.kind == "numeric":
        return ["double"]
    return ["string", "double"] if item.number_like else ["string"]


def _avro_request(spec: DatasetSpec) -> dict[str, Any]:
    names = avro_names(spec)
    fields = [
        _avro_field(item.name, names[item.name], _avro_type(item), item.nullable or not item.required)
        for item in spec.fields
    ]
    label = spec.label.column
    fields.append(_avro_field(label, names[label], ["string", "long", "boolean"], optional=True))
    return {
        "type": "record",
        "name": "PredictionRequest",
        "namespace": AVRO_NAMESPACE,
        "doc": f"{spec.name} prediction request",
        "fields": [
            {"name": "request_id", "type": "string"},  # first: readable even when the rest is not
            {"name": "data", "type": {"type": "record", "name": "Data", "fields": fields}},
            {"name": "explain", "type": "boolean", "default": False},
        ],
    }


@dataclass(frozen=True)
class AvroReader:
    """Reads the payloads written with one Avro schema into the JSON request shape."""

    parsed: Any
    renames: dict[str, str] = field(default_factory=dict)  # Avro name -> the form's name

    @classmethod
    def of(cls, text: str) -> AvroReader:
        """Raises ValueError for a text that is not an Avro schema."""
        try:
            schema = json.loads(text)
            parsed = fastavro.parse_schema(schema)
        except Exception as error:  # fastavro raises its own SchemaParseException, KeyError...
            raise ValueError(f"not an Avro schema: {error}") from error
        renames: dict[str, str] = {}
        if isinstance(schema, dict):
            for entry in schema.get("fields", []):
                data = entry.get("type") if entry.get("name") == "data" else None
                if isinstance(data, dict):
                    renames = {f["name"]: f[NAME_ATTRIBUTE] for f in data.get("fields", []) if NAME_ATTRIBUTE in f}
        return cls(parsed, renames)

    def read(self, payload: bytes, required: frozenset[str]) -> dict[str, Any]:
        """The request as a JSON object would hold it; MessageError `schema_mismatch` if the payload
        does not decode. A null in a field the form does not require means the key is absent."""
        try:
            record = fastavro.schemaless_reader(io.BytesIO(payload), self.parsed, None)
        except Exception as error:  # truncated, a bad varint, invalid UTF-8...
            raise MessageError(
                "schema_mismatch", f"the payload does not decode with its Avro schema: {error!r}"
            ) from error
        if not isinstance(record, dict):
            raise MessageError("schema_mismatch", "the Avro schema's record is not a request")
        data = record.get("data")
        if isinstance(data, dict):
            renamed = {self.renames.get(key, key): value for key, value in data.items()}
            record["data"] = {key: value for key, value in renamed.items() if value is not None or key in required}
        return record


def avro_string_prefix(payload: bytes) -> str | None:
    """The string an Avro record starts with (a request's id, in the schemas registered here), if
    its first bytes hold one: a zig-zag varint length, then UTF-8."""
    length, shift, position = 0, 0, 0
    while position < min(len(payload), 10):
        byte = payload[position]
        length |= (byte & 0x7F) << shift
        position += 1
        if not byte & 0x80:
            break
        shift += 7
    else:
        return None
    length = (length >> 1) ^ -(length & 1)
    if not 0 < length <= len(payload) - position:
        return None
    try:
        return payload[position : position + length].decode("utf-8")
    except UnicodeDecodeError:
        return None


def avro_request(payload: Mapping[str, Any], spec: DatasetSpec) -> dict[str, Any]:
    """A JSON request (PredictionRequest.to_dict) as an app writes it in Avro: Avro names, every field."""
    names = avro_names(spec)
    data = payload["data"]
    return {
        "request_id": payload["request_id"],
        "data": {avro: data.get(name) for name, avro in names.items()},
        "explain": bool(payload.get("explain", False)),
    }


# --- answers ---

_JSON_PREDICTION = {
    "type": "object",
    "required": ["request_id", "prediction", "probability", "model_version"],
    "properties": {
        "request_id": {"type": "string"},
        "prediction": {"enum": [0, 1]},
        "probability": {"type": "number", "minimum": 0, "maximum": 1},
        "model_version": {"type": "integer"},
        "role": {"enum": ["champion", "challenger"]},
        "explanation": {
            "type": "object",
            "properties": {
                "raw_score": {"type": "number"},
                "bias": {"type": "number"},
                "top": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"feature": {"type": "string"}, "contribution": {"type": "number"}},
                    },
                },
                "other": {"type": "number"},
            },
        },
    },
}
_JSON_ERROR = {
    "type": "object",
    "required": ["request_id", "error"],
    "properties": {
        "request_id": {"type": "string"},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}
_JSON_ANSWER = {
    "$schema": JSON_SCHEMA_DRAFT_07,
    "title": "prediction answer",
    "oneOf": [_JSON_PREDICTION, _JSON_ERROR],
}
_AVRO_ANSWER = [
    {
        "type": "record",
        "name": "Prediction",
        "namespace": AVRO_NAMESPACE,
        "fields": [
            {"name": "request_id", "type": "string"},
            {"name": "prediction", "type": "int"},
            {"name": "probability", "type": "double"},
            {"name": "model_version", "type": "long"},
            {"name": "role", "type": "string", "default": "champion"},
            {
                "name": "explanation",
                "default": None,
                "type": [
                    "null",
                    {
                        "type": "record",
                        "name": "Explanation",
                        "fields": [
                            {"name": "raw_score", "type": "double"},
                            {"name": "bias", "type": "double"},
                            {
                                "name": "top",
                                "type": {
                                    "type": "array",
                                    "items": {
                                        "type": "record",
                                        "name": "Contribution",
                                        "fields": [
                                            {"name": "feature", "type": "string"},
                                            {"name": "contribution", "type": "double"},
                                        ],
                                    },
                                },
                            },
                            {"name": "other", "type": "double"},
                        ],
                    },
                ],
            },
        ],
    },
    {
        "type": "record",
        "name": "PredictionError",
        "namespace": AVRO_NAMESPACE,
        "fields": [
            {"name": "request_id", "type": "string"},
            {
                "name": "error",
                "type": {
                    "type": "record",
                    "name": "ErrorDetail",
                    "fields": [{"name": "code", "type": "string"}, {"name": "message", "type": "string"}],
                },
            },
        ],
    },
]


class AvroAnswers:
    """Answers (Prediction.to_dict, PredictionError.to_dict) as Avro payloads of the answer schema."""

    def __init__(self) -> None:
        self._parsed = fastavro.parse_schema(_AVRO_ANSWER)

    def encode(self, answer: Mapping[str, Any]) -> bytes:
        branch = "PredictionError" if "error" in answer else "Prediction"
        out = io.BytesIO()
        fastavro.schemaless_writer(out, self._parsed, (f"{AVRO_NAMESPACE}.{branch}", dict(answer)))
        return out.getvalue()

    def decode(self, payload: bytes) -> dict[str, Any]:
        return fastavro.schemaless_reader(io.BytesIO(payload), self._parsed, None)  # type: ignore[return-value]
