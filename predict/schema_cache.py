"""The predictor's view of the schema registry: the writer schema of each id its requests carry,
fetched once and kept (an id never changes meaning), and the ids its answers go out with.

It is asked on the serving thread, once per batch that holds ids it does not know yet; what it
answers is handed to the pure triage (predict/batch.py). While the registry is down, known ids keep
being served, and unknown ones resolve to `schema_unavailable` without asking again for
RETRY_AFTER_S, so an outage costs at most one short timeout per interval, not one per batch."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from utils import metrics
from utils.schema_registry.client import RegistryClient, RegistryError, RegistryUnavailable, SchemaNotFound
from utils.schema_registry.schemas import AvroReader, answer_schema
from utils.settings import SchemaFormat

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1.0  # after the registry failed to answer
FORGET_MISSING_AFTER_S = 10.0  # an unknown id may be registered later: ask again after this


@dataclass(frozen=True)
class WriterSchema:
    """A schema registered under the requests' subject: what a request with its id is read with."""

    schema_id: int
    format: SchemaFormat
    avro: AvroReader | None = None  # for an Avro schema


@dataclass(frozen=True)
class MissingSchema:
    """An id that cannot be read: `code` is schema_mismatch (not the requests' schema) or
    schema_unavailable (the registry cannot say now)."""

    schema_id: int
    code: str
    message: str


SchemaLookup = WriterSchema | MissingSchema


class SchemaCache:
    def __init__(
        self,
        client: RegistryClient | None,
        request_subject: str,
        answer_subject: str,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.client = client
        self.request_subject = request_subject
        self.answer_subject = answer_subject
        self.clock = clock
        self._known: dict[int, WriterSchema] = {}
        self._missing: dict[int, tuple[float, MissingSchema]] = {}  # id -> (until, why)
        self._answer_ids: dict[SchemaFormat, int] = {}
        # An answer schema not registered in a format is asked for again after a while; that says
        # nothing of the registry, so it must not hold back the look-up of request ids.
        self._answer_retry_at: dict[SchemaFormat, float] = {}
        self._retry_at = 0.0  # while the registry does not answer
        self._reachable = True

    def seed_answer_ids(self, ids: dict[SchemaFormat, int]) -> None:
        """Answer ids a model version recorded when it was registered: no registry call needed."""
        self._answer_ids.update(ids)

    def lookup(self, schema_ids: Iterable[int]) -> dict[int, SchemaLookup]:
        found: dict[int, SchemaLookup] = {}
        now = self.clock()
        for schema_id in schema_ids:
            if schema_id in self._known:
                found[schema_id] = self._known[schema_id]
                continue
            missing = self._missing.get(schema_id)
            if missing is not None and missing[0] > now:
                found[schema_id] = missing[1]
                continue
            found[schema_id] = self._fetch(schema_id, now)
        return found

    def _fetch(self, schema_id: int, now: float, timeout_s: float | None = None) -> SchemaLookup:
        if self.client is None:
            return MissingSchema(
                schema_id,
                "schema_unavailable",
                "this predictor has no schema registry (--schema-registry-url)",
            )
        if now < self._retry_at:
            return self._unavailable(schema_id)
        try:
            registered = self.client.schema(schema_id, timeout_s)
            subjects = self.client.subjects_of(schema_id, timeout_s)
        except SchemaNotFound as error:
            metrics.SCHEMA_LOOKUPS.labels(outcome="not_found").inc()
            return self._remember_missing(
                MissingSchema(schema_id, "schema_mismatch", f"schema id {schema_id} is not in the registry ({error})"),
                now,
            )
        except RegistryUnavailable as error:
            metrics.SCHEMA_LOOKUPS.labels(outcome="unavailable").inc()
            if self._reachable:
                log.warning("schema registry unreachable, known schemas keep serving error=%s", error)
            self._reachable = False
            metrics.SCHEMA_REGISTRY_REACHABLE.set(0)
            self._retry_at = now + RETRY_AFTER_S
            return self._unavailable(schema_id)
        if not self._reachable:
            log.info("schema registry reachable again")
        self._reachable = True
        metrics.SCHEMA_REGISTRY_REACHABLE.set(1)
        if self.request_subject not in subjects:
            metrics.SCHEMA_LOOKUPS.labels(outcome="other_subject").inc()
            return self._remember_missing(
                MissingSchema(
                    schema_id,
                    "schema_mismatch",
                    f"schema id {schema_id} is registered under {sorted(subjects)}, not {self.request_subject}",
                ),
                now,
            )
        try:
            avro = AvroReader.of(registered.text) if registered.format == "avro" else None
        except ValueError as error:
            return self._remember_missing(MissingSchema(schema_id, "schema_mismatch", str(error)), now)
        metrics.SCHEMA_LOOKUPS.labels(outcome="found").inc()
        known = self._known[schema_id] = WriterSchema(schema_id, registered.format, avro)
        log.info("request schema fetched schema_id=%s format=%s", schema_id, registered.format)
        return known

    def _remember_missing(self, missing: MissingSchema, now: float) -> MissingSchema:
        self._missing[missing.schema_id] = (now + FORGET_MISSING_AFTER_S, missing)
        return missing

    def _unavailable(self, schema_id: int) -> MissingSchema:
        return MissingSchema(
            schema_id, "schema_unavailable", f"the schema registry cannot be reached to read schema id {schema_id}"
        )

    def look_up_at_start(self, timeout_s: float) -> None:
        """At start, off the serving path: the requests' newest schema and the answer schemas' ids,
        so that the first requests need no registry call (a registry slow to answer its first
        requests would otherwise have them answered schema_unavailable, or in plain JSON)."""
        if self.client is None:
            return
        try:
            latest = self.client.latest(self.request_subject, timeout_s)
            self._fetch(latest.schema_id, self.clock(), timeout_s)
        except RegistryError as error:
            log.warning("request schema not looked up at start subject=%s error=%s", self.request_subject, error)
        for schema_format in ("json", "avro"):
            if schema_format in self._answer_ids:
                continue
            try:
                found = self.client.find(self.answer_subject, schema_format, answer_schema(schema_format), timeout_s)
            except RegistryUnavailable as error:
                log.warning("answer schema ids not looked up at start subject=%s error=%s", self.answer_subject, error)
                return
            except RegistryError:
                continue  # not registered in this format (the subject holds the other one)
            if found is not None:
                self._answer_ids[schema_format] = found

    def answer_id(self, schema_format: SchemaFormat) -> int | None:
        """The id answers in this format go out with: the answer schema's under the answers' subject
        (None while the registry cannot say: such answers go out as plain JSON)."""
        if schema_format in self._answer_ids:
            return self._answer_ids[schema_format]
        now = self.clock()
        if self.client is None or now < self._retry_at or now < self._answer_retry_at.get(schema_format, 0.0):
            return None
        try:
            found = self.client.find(self.answer_subject, schema_format, answer_schema(schema_format))
        except RegistryUnavailable as error:
            log.warning("answer schema id unknown for now subject=%s error=%s", self.answer_subject, error)
            self._retry_at = now + RETRY_AFTER_S
            return None
        except RegistryError as error:  # a subject it refuses to look in
            log.warning("answer schema id unknown for now subject=%s error=%s", self.answer_subject, error)
            self._answer_retry_at[schema_format] = now + RETRY_AFTER_S
            return None
        if found is None:
            log.warning("the answer schema is not registered subject=%s format=%s", self.answer_subject, schema_format)
            self._answer_retry_at[schema_format] = now + FORGET_MISSING_AFTER_S
            return None
        self._answer_ids[schema_format] = found
        return found
