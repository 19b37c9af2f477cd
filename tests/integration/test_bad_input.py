"""Garbage on app_messages: every record gets exactly the outcome it deserves, valid ones are
scored, and the predictor never crashes or stalls."""

import json
import time

import pytest
from kafka import KafkaProducer

from tests.conftest import ADULT_RECORD as SMOKE_RECORD
from tests.integration.conftest import BOOTSTRAP

VALID = {**SMOKE_RECORD, "income_bracket": "<=50K"}
FORGED = "2026-11-28 01:00:00,000 ERROR service=predictor forged: admin password reset"


def request(request_id, **changes):
    data = {k: v for k, v in {**VALID, **changes}.items() if v is not ...}
    return json.dumps({"request_id": request_id, "data": data}).encode()


# (raw value, expected outcome): ("dlq", code) when the request id cannot be read, ("error", code)
# answered on predictions, ("ok", label or None) scored.
CASES = [
    (b"\xff\xfe\x00garbage", ("dlq", "invalid_encoding")),
    (b"not json at all", ("dlq", "invalid_json")),
    (b"", ("dlq", "invalid_json")),
    (None, ("dlq", "empty_message")),
    (b"[1, 2, 3]", ("dlq", "not_an_object")),
    (b'"just a string"', ("dlq", "not_an_object")),
    (b"null", ("dlq", "not_an_object")),
    (b"42", ("dlq", "not_an_object")),
    (b"{}", ("dlq", "missing_request_id")),
    (b'{"request_id": "", "data": {}}', ("dlq", "missing_request_id")),
    (b'{"request_id": 12345, "data": {}}', ("dlq", "missing_request_id")),
    (b'{"request_id": null}', ("dlq", "missing_request_id")),
    (b'{"request_id": ["a"]}', ("dlq", "missing_request_id")),
    (json.dumps({"request_id": "x" * 200}).encode(), ("dlq", "invalid_request_id")),
    (b'{"request_id": "truncated", "data": {"age": 3', ("dlq", "invalid_json")),
    (b'{"request_id": NaN, "data": {"age": NaN}}', ("dlq", "missing_request_id")),
    (b"[" * 30000 + b"]" * 30000, ("dlq", "invalid_json")),  # deep nesting, under the size limit
    (b'{"request_id": "no-data"}', ("error", "invalid_type")),
    (b'{"request_id": "data-null", "data": null}', ("error", "invalid_type")),
    (b'{"request_id": "data-list", "data": [1, 2]}', ("error", "invalid_type")),
    (request("missing-age", age=...), ("error", "missing_field")),
    (request("missing-many", age=..., workclass=..., race=...), ("error", "missing_field")),
    (request("extra-field", favourite_colour="blue"), ("error", "unknown_field")),
    (json.dumps({"request_id": "extra-top", "data": VALID, "debug": True}).encode(), ("error", "unknown_field")),
    (request("age-text", age="abc"), ("error", "invalid_type")),
    (request("age-bool", age=True), ("error", "invalid_type")),
    (request("fnlwgt-text", fnlwgt="77516"), ("error", "invalid_type")),
    (request("age-negative", age=-5), ("error", "out_of_range")),
    (request("age-huge", age=1e300), ("error", "out_of_range")),
    (request("hours-500", hours_per_week=500), ("error", "out_of_range")),
    (request("gain-negative", capital_gain=-1), ("error", "out_of_range")),
    (request("workclass-list", workclass=["Private"]), ("error", "invalid_type")),
    (request("workclass-number", workclass=7), ("error", "invalid_type")),
    (request("workclass-object", workclass={"a": 1}), ("error", "invalid_type")),
    (request("occupation-long", occupation="x" * 500), ("error", "out_of_range")),
    (request("label-rich", income_bracket="rich"), ("error", "invalid_label")),
    (request("label-two", income_bracket=2), ("error", "invalid_label")),
    (request("too-large", occupation="y" * 70000), ("error", "too_large")),
    # Ids that would forge or hide log lines: answered (JSON escapes them), never logged raw.
    (request(f"inj-1\n{FORGED}", age=...), ("error", "invalid_request_id")),
    (request(f"inj-2\r{FORGED}"), ("error", "invalid_request_id")),
    (request("inj-3\x1b[31mred"), ("error", "invalid_request_id")),
    (
        json.dumps({"data": {"occupation": "y" * 70000}, "request_id": "too-large-id-last"}).encode(),
        ("error", "too_large"),
    ),
    (json.dumps({"data": {"occupation": "y" * 70000}}).encode(), ("dlq", "too_large")),
    # Python's json.dumps writes NaN and Infinity: the answer names the field.
    (request("age-nan", age=float("nan")), ("error", "out_of_range")),
    (request("hours-infinity", hours_per_week=float("inf")), ("error", "out_of_range")),
    (request("gain-minus-infinity", capital_gain=float("-inf")), ("error", "out_of_range")),
    (request("label-nan", income_bracket=float("nan")), ("error", "invalid_label")),
    # Valid requests, some of them unusual: scored, never an error.
    (request("valid-labelled"), ("ok", 0)),
    (request("valid-unlabelled", income_bracket=...), ("ok", None)),
    (request("valid-high", income_bracket=">50K"), ("ok", 1)),
    (request("valid-unseen-category", workclass="Space-agency", native_country="Atlantis"), ("ok", 0)),
    (request("valid-null-category", occupation=None), ("ok", 0)),
    (request("valid-question-mark", occupation="?"), ("ok", 0)),
    (request("valid-float-age", age=39.5, income_bracket=1), ("ok", 1)),
]


def test_every_bad_record_gets_its_exact_outcome(pipeline):
    predictor = pipeline.start_predictor("--retrain-every", "1000")
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, max_request_size=2_000_000)
    # Interleave: a valid labelled request after every bad record.
    sent: list[tuple[bytes | None, tuple]] = []
    for index, (raw, outcome) in enumerate(CASES):
        producer.send(pipeline.topic("app_messages"), key=f"bad-{index}".encode(), value=raw)
        sent.append((raw, outcome))
        filler_id = f"filler-{index}"
        producer.send(pipeline.topic("app_messages"), value=request(filler_id))
        sent.append((None, ("ok", 0, filler_id)))
    producer.flush()
    producer.close()

    expected_answers = {}
    for raw, outcome in sent:
        if outcome[0] == "ok":
            request_id = outcome[2] if len(outcome) == 3 else json.loads(raw or b"{}")["request_id"]
            expected_answers[request_id] = ("ok", outcome[1])
        elif outcome[0] == "error":
            expected_answers[json.loads(raw or b"{}")["request_id"]] = outcome
    expected_dead = sorted(outcome[1] for _, outcome in sent if outcome[0] == "dlq")
    assert len(CASES) - sum(1 for _, o in CASES if o[0] == "ok") >= 30

    answers = wait_for_records(pipeline, "predictions", len(expected_answers))
    by_id = {}
    for answer in answers:
        assert answer["request_id"] not in by_id, "one answer per request"
        by_id[answer["request_id"]] = answer
    assert set(by_id) == set(expected_answers)
    for request_id, outcome in expected_answers.items():
        answer = by_id[request_id]
        if outcome[0] == "ok":
            assert "error" not in answer, (request_id, answer)
            assert answer["prediction"] in (0, 1) and 0 <= answer["probability"] <= 1
        else:
            assert answer["error"]["code"] == outcome[1], (request_id, answer)
            assert len(answer["error"]["message"]) > 10

    dead = wait_for_records(pipeline, "app_messages_dlq", len(expected_dead))
    assert sorted(d["code"] for d in dead) == expected_dead
    for record in dead:
        assert record["topic"] == pipeline.topic("app_messages")
        assert record["offset"] >= 0 and record["partition"] >= 0
        assert len(record["raw_base64"]) <= 4 * 1024 / 3 + 4

    # Only valid, labelled requests reach the retraining data.
    observed = {o["request_id"] for o in pipeline.read_topic("observations")}
    labelled_ok = {rid for rid, outcome in expected_answers.items() if outcome == ("ok", 0) or outcome == ("ok", 1)}
    assert observed == labelled_ok
    assert predictor.process.poll() is None, "the predictor is still running"
    # No value from a message became a line of the predictor's log.
    assert not any(line.startswith(FORGED[:19]) for line in predictor.log_text().splitlines())


def wait_for_records(pipeline, topic, count, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    records = []
    while time.monotonic() < deadline:
        records = pipeline.read_topic(topic, timeout_s=2)
        if len(records) >= count:
            return records
    pytest.fail(f"{topic}: {len(records)} records after {timeout_s}s, expected {count}")
