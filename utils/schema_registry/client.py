"""The part of the Confluent Schema Registry REST API the pipeline uses, over the standard library's
HTTP client (no extra dependency for the predictor). The URL is the API's base: Apicurio's ccompat
API (`http://localhost:8081/apis/ccompat/v7`), or a Confluent, Karapace or Redpanda registry's root.

Every call raises `RegistryUnavailable` when the registry does not answer (or answers 5xx),
`SchemaRefused` when it refuses a schema (incompatible: 409, invalid: 422) and `SchemaNotFound` for
an unknown id or subject (404); nothing else."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from utils.settings import SchemaFormat

log = logging.getLogger(__name__)

REGISTRY_TYPES: dict[SchemaFormat, str] = {"json": "JSON", "avro": "AVRO"}
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
TIMEOUT_S = 2.0  # the predictor asks on its serving thread: a hung registry must not hold it long


class RegistryError(Exception):
    """Something the registry said or did not say; `str()` is one line for humans."""


class RegistryUnavailable(RegistryError):
    pass


class SchemaRefused(RegistryError):
    pass


class SchemaNotFound(RegistryError):
    pass


@dataclass(frozen=True)
class RegisteredSchema:
    schema_id: int
    format: SchemaFormat
    text: str


def format_of(schema_type: str | None) -> SchemaFormat | None:
    """The registry's schemaType as ours (absent means Avro, by the API's rule); None for another
    type (Protobuf)."""
    return {"JSON": "json", "AVRO": "avro", None: "avro"}.get(schema_type)  # type: ignore[return-value]


class RegistryClient:
    def __init__(self, url: str, timeout_s: float = TIMEOUT_S):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def schema(self, schema_id: int, timeout_s: float | None = None) -> RegisteredSchema:
        """The schema of an id (ids never change meaning: callers may cache the answer for good)."""
        found = self._call("GET", f"/schemas/ids/{int(schema_id)}", None, timeout_s)
        schema_format = format_of(found.get("schemaType"))
        if schema_format is None:
            raise SchemaNotFound(f"schema {schema_id} is {found.get('schemaType')}, not JSON Schema or Avro")
        return RegisteredSchema(int(schema_id), schema_format, str(found["schema"]))

    def subjects_of(self, schema_id: int, timeout_s: float | None = None) -> frozenset[str]:
        """The subjects under which an id is registered."""
        found = self._call("GET", f"/schemas/ids/{int(schema_id)}/versions", None, timeout_s)
        return frozenset(str(entry["subject"]) for entry in found)

    def set_compatibility(self, subject: str, level: str) -> None:
        self._call("PUT", f"/config/{_quoted(subject)}", {"compatibility": level})

    def register(self, subject: str, schema_format: SchemaFormat, text: str) -> int:
        """The id of `text` under `subject`, registering it as the subject's newest version unless it
        is there already; SchemaRefused if the subject's compatibility rule refuses it."""
        body = {"schema": text, "schemaType": REGISTRY_TYPES[schema_format]}
        return int(self._call("POST", f"/subjects/{_quoted(subject)}/versions", body)["id"])

    def find(self, subject: str, schema_format: SchemaFormat, text: str, timeout_s: float | None = None) -> int | None:
        """The id of `text` if it is registered under `subject`, without registering it."""
        body = {"schema": text, "schemaType": REGISTRY_TYPES[schema_format]}
        try:
            return int(self._call("POST", f"/subjects/{_quoted(subject)}", body, timeout_s)["id"])
        except SchemaNotFound:
            return None

    def latest(self, subject: str, timeout_s: float | None = None) -> RegisteredSchema:
        """The subject's newest version."""
        found = self._call("GET", f"/subjects/{_quoted(subject)}/versions/latest", None, timeout_s)
        schema_format = format_of(found.get("schemaType"))
        if schema_format is None:
            raise SchemaNotFound(f"{subject}'s latest schema is {found.get('schemaType')}, not JSON Schema or Avro")
        return RegisteredSchema(int(found["id"]), schema_format, str(found["schema"]))

    def _call(self, method: str, path: str, body: dict | None = None, timeout_s: float | None = None) -> Any:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s or self.timeout_s) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            message = _message_of(error)
            if error.code == 404:
                raise SchemaNotFound(message) from error
            if error.code in (409, 422):
                raise SchemaRefused(message) from error
            raise RegistryUnavailable(f"the schema registry at {self.url} answered {error.code}: {message}") from error
        except (OSError, ValueError) as error:  # refused, reset, timed out; a body that is not JSON
            raise RegistryUnavailable(f"the schema registry at {self.url} does not answer: {error}") from error


def _quoted(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")


def _message_of(error: urllib.error.HTTPError) -> str:
    try:
        found = json.loads(error.read() or b"{}")
        return str(found.get("message") or error.reason)
    except (OSError, ValueError):
        return str(error.reason)
