"""The predictor's per-record validation, without Kafka: each record's fate is decided alone."""

import json

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from utils.predictor_service import triage
from utils.scoring import SMOKE_RECORD


def record(value, offset=0):
    return ConsumerRecord(
        topic="app",
        partition=1,
        leader_epoch=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=value,
        headers=[],
        checksum=None,
        serialized_key_size=-1,
        serialized_value_size=len(value or b""),
        serialized_header_size=-1,
    )


def request(request_id="r1", **changes):
    return json.dumps({"request_id": request_id, "data": {**SMOKE_RECORD, **changes}}).encode()


@pytest.mark.parametrize(
    "value, scored, errors, dead",
    [
        (request(), 1, [], []),
        (request(age="x"), 0, ["invalid_type"], []),
        (b"{oops", 0, [], ["invalid_json"]),
        (b'{"data": {}}', 0, [], ["missing_request_id"]),
        (request(workclass="z" * 70000), 0, ["too_large"], []),
    ],
)
def test_each_record_gets_one_fate(value, scored, errors, dead):
    batch = triage([record(value, offset=7)], max_bytes=64 * 1024)
    assert len(batch.requests) == scored
    assert [e.code for e in batch.errors] == errors
    assert [d.code for d in batch.dead_letters] == dead
    for letter in batch.dead_letters:
        assert (letter.topic, letter.partition, letter.offset) == ("app", 1, 7)


def test_a_bad_record_does_not_affect_its_neighbours():
    records = [record(request("a")), record(b"\xff"), record(request("b", age=-3)), record(request("c"))]
    batch = triage(records, max_bytes=64 * 1024)
    assert [r.request_id for r in batch.requests] == ["a", "c"]
    assert [(e.request_id, e.code) for e in batch.errors] == [("b", "out_of_range")]
    assert [d.code for d in batch.dead_letters] == ["invalid_encoding"]
