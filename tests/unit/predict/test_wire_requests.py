"""Requests in the schema registry's wire format: each record's fate, decided without I/O, and the
predictor's cache of the registry (against a registry of dicts: the real one is in
tests/integration/test_schema_registry.py)."""

import io
import json

import fastavro
import pytest

from predict.batch import triage
from predict.schema_cache import MissingSchema, SchemaCache, SchemaLookup, WriterSchema
from tests.conftest import ADULT_RECORD
from utils.data import default_spec
from utils.form import Form
from utils.kafka.interface import Record
from utils.schema_registry import wire
from utils.schema_registry.client import RegisteredSchema, RegistryUnavailable, SchemaNotFound
from utils.schema_registry.schemas import AvroReader, avro_request, request_schema

SPEC = default_spec()
FORM = Form(SPEC)
LIMIT = 64 * 1024
AVRO_TEXT = request_schema(SPEC, "avro")
SCHEMAS: dict[int, SchemaLookup] = {
    1: WriterSchema(1, "json"),
    2: WriterSchema(2, "avro", AvroReader.of(AVRO_TEXT)),
    3: MissingSchema(3, "schema_mismatch", "schema id 3 is registered under ['other-value']"),
    4: MissingSchema(4, "schema_unavailable", "the schema registry cannot be reached"),
}


def json_request(request_id="r1", **changes):
    return json.dumps({"request_id": request_id, "data": {**ADULT_RECORD, **changes}}).encode()


def avro_payload(request_id="r1", **changes):
    out = io.BytesIO()
    record = avro_request({"request_id": request_id, "data": {**ADULT_RECORD, **changes}}, SPEC)
    fastavro.schemaless_writer(out, fastavro.parse_schema(json.loads(AVRO_TEXT)), record)
    return out.getvalue()


@pytest.mark.parametrize(
    "value, answered_as, error, dead",
    [
        (json_request(), "plain", None, None),
        (wire.frame(1, json_request()), "json", None, None),
        (wire.frame(2, avro_payload()), "avro", None, None),
        (wire.frame(1, json_request(age="old")), "json", "invalid_type", None),
        (wire.frame(2, avro_payload(age=200.0)), "avro", "out_of_range", None),
        (wire.frame(1, b'{"request_id": "r1", "data": '), "json", "invalid_json", None),  # id peeked
        (wire.frame(2, avro_payload()[:12]), "avro", "schema_mismatch", None),  # truncated: id readable
        (wire.frame(2, b"\x00garbage"), None, None, "schema_mismatch"),
        (wire.frame(3, json_request()), "json", "schema_mismatch", None),
        (wire.frame(3, avro_payload()), "avro", "schema_mismatch", None),
        (wire.frame(4, json_request()), "json", "schema_unavailable", None),
        (wire.frame(4, avro_payload()), "avro", "schema_unavailable", None),
        (wire.frame(5, json_request()), "json", "schema_unavailable", None),  # not looked up
        (wire.frame(4, b"\xff\xff"), None, None, "schema_unavailable"),
    ],
)
def test_each_wire_record_gets_one_fate(value, answered_as, error, dead):
    batch = triage([Record("app", 0, 9, None, value)], LIMIT, FORM, SCHEMAS)
    if dead is not None:
        assert [d.code for d in batch.dead_letters] == [dead] and not batch.requests and not batch.errors
        return
    if error is None:
        assert [r.request_id for r in batch.requests] == ["r1"] and batch.formats == (answered_as,)
        assert batch.requests[0].features == FORM.features(ADULT_RECORD)
    else:
        assert [(e.request_id, e.code) for e in batch.errors] == [("r1", error)]
        assert batch.error_formats == (answered_as,)


def test_formats_follow_their_requests_in_a_mixed_batch():
    records = [
        Record("app", 0, offset, None, value)
        for offset, value in enumerate(
            [json_request("a"), wire.frame(2, avro_payload("b")), wire.frame(4, json_request("c")), b"{"]
        )
    ]
    batch = triage(records, LIMIT, FORM, SCHEMAS)
    assert [(r.request_id, f) for r, f in zip(batch.requests, batch.formats, strict=True)] == [
        ("a", "plain"),
        ("b", "avro"),
    ]
    assert [(e.request_id, f) for e, f in zip(batch.errors, batch.error_formats, strict=True)] == [("c", "json")]
    assert len(batch.dead_letters) == 1


class DictRegistry:
    """The three calls the cache makes, answered from dicts; `down` makes every call fail."""

    def __init__(self):
        self.schemas = {1: RegisteredSchema(1, "json", "{}"), 2: RegisteredSchema(2, "avro", AVRO_TEXT)}
        self.subjects = {1: {"app-value"}, 2: {"app-value", "copy-value"}, 3: {"other-value"}}
        self.answers = {"json": 10, "avro": 11}
        self.down = False
        self.calls = 0

    def _call(self):
        self.calls += 1
        if self.down:
            raise RegistryUnavailable("connection refused")

    def schema(self, schema_id, timeout_s=None):
        self._call()
        if schema_id == 3:
            return RegisteredSchema(3, "json", "{}")
        if schema_id not in self.schemas:
            raise SchemaNotFound(f"Schema {schema_id} not found.")
        return self.schemas[schema_id]

    def subjects_of(self, schema_id, timeout_s=None):
        self._call()
        return frozenset(self.subjects[schema_id])

    def latest(self, subject, timeout_s=None):
        self._call()
        return self.schemas[2]

    def find(self, subject, schema_format, text, timeout_s=None):
        self._call()
        return self.answers.get(schema_format)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def cache_of(registry, clock):
    return SchemaCache(registry, "app-value", "predictions-value", clock)


def test_each_id_is_fetched_once_and_a_foreign_or_unknown_one_is_a_mismatch():
    registry, clock = DictRegistry(), Clock()
    cache = cache_of(registry, clock)
    found = cache.lookup([1, 2, 3, 99])
    assert isinstance(found[1], WriterSchema) and found[1].format == "json"
    assert isinstance(found[2], WriterSchema) and found[2].avro is not None
    assert found[3].code == "schema_mismatch" and "other-value" in found[3].message
    assert found[99].code == "schema_mismatch"
    calls = registry.calls
    cache.lookup([1, 2, 3, 99])
    assert registry.calls == calls  # known ids for good, unknown ones for a while
    clock.now += 60
    cache.lookup([1, 2, 3, 99])
    assert registry.calls == calls + 3  # 3 and 99 asked again (a schema call each, 3 a subjects call too)


def test_while_the_registry_is_down_known_ids_serve_and_unknown_ones_are_unavailable():
    registry, clock = DictRegistry(), Clock()
    cache = cache_of(registry, clock)
    cache.lookup([1])
    registry.down = True
    registry.schemas[5] = RegisteredSchema(5, "json", "{}")
    registry.subjects[5] = {"app-value"}
    found = cache.lookup([1, 5])
    assert isinstance(found[1], WriterSchema) and found[5].code == "schema_unavailable"
    calls = registry.calls
    cache.lookup([5])
    assert registry.calls == calls  # not asked again before RETRY_AFTER_S
    registry.down = False
    clock.now += 5
    assert isinstance(cache.lookup([5])[5], WriterSchema)  # back: served


def test_answer_ids_are_seeded_or_looked_up_once():
    registry, clock = DictRegistry(), Clock()
    cache = cache_of(registry, clock)
    cache.seed_answer_ids({"avro": 42})
    assert cache.answer_id("avro") == 42 and registry.calls == 0
    assert cache.answer_id("json") == 10 and cache.answer_id("json") == 10 and registry.calls == 1


def test_an_answer_schema_missing_in_one_format_does_not_hold_back_request_ids():
    """Only Avro answers registered: a JSON answer finds no id (plain JSON, asked again later), and
    an unknown request id right after is still looked up, not taken for a registry outage."""
    registry, clock = DictRegistry(), Clock()
    del registry.answers["json"]
    cache = cache_of(registry, clock)
    assert cache.answer_id("json") is None
    found = cache.lookup([3, 99])
    assert found[3].code == "schema_mismatch" and found[99].code == "schema_mismatch"
    assert cache.answer_id("avro") == 11
    calls = registry.calls
    assert cache.answer_id("json") is None and registry.calls == calls  # not asked again at once
    registry.answers["json"] = 10
    clock.now += 60
    assert cache.answer_id("json") == 10


def test_what_is_looked_up_at_start_needs_no_call_later():
    registry, clock = DictRegistry(), Clock()
    cache = cache_of(registry, clock)
    cache.look_up_at_start(timeout_s=10)
    calls = registry.calls
    assert (cache.answer_id("json"), cache.answer_id("avro")) == (10, 11)
    assert isinstance(cache.lookup([2])[2], WriterSchema)  # the requests' newest schema
    assert registry.calls == calls == 5  # latest, schema, subjects, two answer ids
    registry.down = True
    down = cache_of(registry, clock)
    down.look_up_at_start(timeout_s=10)  # a registry down at start: looked up later, when it answers
    registry.down = False
    clock.now += 5
    assert down.answer_id("avro") == 11 and isinstance(down.lookup([2])[2], WriterSchema)


def test_without_a_registry_every_id_is_unavailable():
    cache = SchemaCache(None, "app-value", "predictions-value")
    assert cache.lookup([1])[1].code == "schema_unavailable"  # type: ignore[union-attr]
    assert cache.answer_id("json") is None


@pytest.mark.parametrize(
    "answer_format, seeded, framed_with",
    [("plain", {}, None), ("json", {"json": 10}, 10), ("avro", {"avro": 11}, 11), ("avro", {}, None)],
)
def test_answers_go_out_in_their_request_format(answer_format, seeded, framed_with):
    from predict.answers import AnswerEncoder
    from utils.messages.requests import Prediction, answer_from_dict
    from utils.schema_registry.schemas import AvroAnswers

    cache = SchemaCache(None, "app-value", "predictions-value")
    cache.seed_answer_ids(seeded)
    answer = Prediction("r1", 1, 0.5, 2)
    value = AnswerEncoder(cache).encode(answer.to_dict(), answer_format)
    if framed_with is None:  # plain, or no answer id known: plain JSON beats no answer
        assert json.loads(value) == answer.to_dict()
        return
    assert wire.schema_id_of(value) == framed_with
    payload = wire.payload_of(value)
    decoded = json.loads(payload) if answer_format == "json" else AvroAnswers().decode(payload)
    assert answer_from_dict(decoded) == answer
