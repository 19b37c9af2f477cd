"""The predictor's decisions, without Kafka: each record's fate, the outcome of a batch, when to retrain."""

import json
import math

import numpy as np
import pytest

from predict.batch import decide, retrain_ends, retrain_ends_in_transaction, triage
from tests.conftest import ADULT_RECORD as SMOKE_RECORD
from utils.data import default_spec
from utils.form import Form
from utils.kafka.interface import Record
from utils.scoring import Scorer

LIMIT = 64 * 1024
TOP = 5
FORM = Form(default_spec())


def record(value, offset=0, partition=1):
    return Record("app", partition, offset, None, value)


def request(request_id="r1", label=None, **changes):
    data = {**SMOKE_RECORD, **changes}
    if label is not None:
        data["income_bracket"] = label
    return json.dumps({"request_id": request_id, "data": data}).encode()  # json.dumps writes NaN/Infinity


@pytest.mark.parametrize(
    "value, scored, errors, dead",
    [
        (request(), 1, [], []),
        (request(age="x"), 0, ["invalid_type"], []),
        (b"{oops", 0, [], ["invalid_json"]),
        (b'{"data": {}}', 0, [], ["missing_request_id"]),
        (request(workclass="z" * 70000), 0, ["too_large"], []),
        (json.dumps({"data": {"x": "z" * 70000}, "request_id": "at-the-end"}).encode(), 0, ["too_large"], []),
        (b'{"data": "' + b"z" * 70000 + b'"}', 0, [], ["too_large"]),
        (request(age=math.nan), 0, ["out_of_range"], []),
        (request(hours_per_week=math.inf), 0, ["out_of_range"], []),
        (request(capital_gain=-math.inf), 0, ["out_of_range"], []),
        (request(occupation=math.nan), 0, ["invalid_type"], []),
        (request(label=math.nan), 0, ["invalid_label"], []),
        (b'{"request_id": NaN, "data": {}}', 0, [], ["missing_request_id"]),
        (request("a" * 129), 0, [], ["invalid_request_id"]),
        (request("a" * 128), 1, [], []),
        (request("with spaces and ünïcode ✓"), 1, [], []),
        (request("line\nbreak"), 0, ["invalid_request_id"], []),
        (request("escape\x1b[2J"), 0, ["invalid_request_id"], []),
        (request("separator\u2028"), 0, ["invalid_request_id"], []),
        (request("right-to-left\u202eoverride"), 0, ["invalid_request_id"], []),
        (request("   "), 0, [], ["missing_request_id"]),
    ],
)
def test_each_record_gets_one_fate(value, scored, errors, dead):
    batch = triage([record(value, offset=7)], max_bytes=LIMIT, form=FORM)
    assert len(batch.requests) == scored
    assert [e.code for e in batch.errors] == errors
    assert [d.code for d in batch.dead_letters] == dead
    for letter in batch.dead_letters:
        assert (letter.topic, letter.partition, letter.offset) == ("app", 1, 7)


@pytest.mark.parametrize(
    "value, field",
    [(request(age=math.nan), "age"), (request(fnlwgt=math.inf), "fnlwgt"), (request(workclass=math.nan), "workclass")],
)
def test_non_finite_numbers_are_answered_naming_the_field(value, field):
    [error] = triage([record(value)], max_bytes=LIMIT, form=FORM).errors
    assert error.request_id == "r1" and error.message.startswith(field)


def test_an_id_that_breaks_the_rule_is_echoed_in_its_error_answer():
    [error] = triage([record(request("inj-1\n2026-11-28 ERROR forged"))], max_bytes=LIMIT, form=FORM).errors
    assert (error.request_id, error.code) == ("inj-1\n2026-11-28 ERROR forged", "invalid_request_id")
    assert "\\n" in error.message  # the message names the character, escaped


def test_a_too_large_record_is_refused_before_it_is_parsed(monkeypatch):
    def no_parsing(self, raw):
        raise AssertionError("parsed")

    monkeypatch.setattr("utils.request_decoder.RequestDecoder.decode", no_parsing)
    [error] = triage([record(request("big", workclass="z" * 70000))], max_bytes=LIMIT, form=FORM).errors
    assert (error.request_id, error.code) == ("big", "too_large")


def test_a_bad_record_does_not_affect_its_neighbours():
    records = [record(request("a")), record(b"\xff"), record(request("b", age=-3)), record(request("c"))]
    batch = triage(records, max_bytes=LIMIT, form=FORM)
    assert [r.request_id for r in batch.requests] == ["a", "c"]
    assert [(e.request_id, e.code) for e in batch.errors] == [("b", "out_of_range")]
    assert [d.code for d in batch.dead_letters] == ["invalid_encoding"]


class FixedScorer(Scorer):
    """A real Scorer's interface with a known answer, so outcomes can be checked exactly."""

    probability: float
    fail: bool

    def __init__(self, version=3, probability=0.8, fail=False):
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "probability", probability)
        object.__setattr__(self, "fail", fail)
        object.__setattr__(self, "form", FORM)

    def transform(self, records):
        return np.zeros((len(records), 1))

    def predict_matrix(self, matrix):
        if self.fail:
            raise RuntimeError("model broke")
        return np.full(len(matrix), self.probability)


def test_decide_answers_observes_and_dead_letters_without_mutating_its_input():
    records = (
        record(request("a", label=">50K"), 0),
        record(request("b"), 1),
        record(request("c", age=-1), 2),
        record(b"[]", 3),
    )
    before = list(records)
    outcome = decide(records, FixedScorer(probability=0.8), LIMIT, TOP)
    assert list(records) == before
    assert [(a.request_id, a.prediction, a.probability, a.model_version) for a in outcome.answers] == [
        ("a", 1, 0.8, 3),
        ("b", 1, 0.8, 3),
    ]
    assert [(e.request_id, e.code) for e in outcome.errors] == [("c", "out_of_range")]
    assert [d.code for d in outcome.dead_letters] == ["not_an_object"]
    assert [(o.request_id, o.label) for o in outcome.observations] == [("a", 1)]
    assert outcome.scored is not None and [r.label for r in outcome.scored.requests] == [1, None]
    assert outcome.scoring_failure is None


@pytest.mark.parametrize("probability, prediction", [(0.5, 1), (0.4999, 0), (0.0, 0), (1.0, 1)])
def test_threshold(probability, prediction):
    [answer] = decide([record(request())], FixedScorer(probability=probability), LIMIT, TOP).answers
    assert answer.prediction == prediction


def test_a_scoring_failure_answers_every_valid_request_with_an_error():
    records = [record(request("a", label="<=50K")), record(request("b")), record(request("c", age="x"))]
    outcome = decide(records, FixedScorer(fail=True), LIMIT, TOP)
    assert outcome.answers == ()
    assert sorted((e.request_id, e.code) for e in outcome.errors) == [
        ("a", "internal_error"),
        ("b", "internal_error"),
        ("c", "invalid_type"),
    ]
    assert "model broke" in (outcome.scoring_failure or "")
    assert [o.request_id for o in outcome.observations] == ["a"]


@pytest.mark.parametrize(
    "offsets, every, ends",
    [
        ([], 25, []),
        ([0, 1, 2], 25, []),
        ([23, 24, 25], 25, [25]),
        ([24, 49, 74], 25, [25, 50, 75]),
        ([99], 100, [100]),
        ([100], 100, []),
        ([4, 9], 1, [5, 10]),
        ([24, 49], 0, []),  # the count trigger off
    ],
)
def test_retrain_ends(offsets, every, ends):
    assert retrain_ends(offsets, every) == ends


def test_each_multiple_is_requested_by_exactly_one_of_several_predictors():
    # Three predictors' acknowledged observations interleave on the one-partition log.
    rng = np.random.default_rng(7)
    owner = rng.integers(0, 3, size=1000)
    per_predictor = [[int(o) for o in np.flatnonzero(owner == p)] for p in range(3)]
    requested = [end for offsets in per_predictor for end in retrain_ends(offsets, 50)]
    assert sorted(requested) == list(range(50, 1001, 50))


@pytest.mark.parametrize(
    "offsets, every, ends",
    [
        ([], 25, []),
        ([0, 1, 2], 25, []),
        ([20, 21, 22], 25, []),
        ([21, 22, 23], 25, [24]),  # 24 is this transaction's marker: multiple 25 = offset 24 + 1
        ([24], 25, [25]),
        ([10, 30, 60], 25, [61]),  # several multiples crossed: one request covers them
        ([49, 50], 50, [51]),
        ([21, 22, 23], 0, []),  # the count trigger off
    ],
)
def test_retrain_requests_of_a_transaction_count_its_marker(offsets, every, ends):
    assert retrain_ends_in_transaction(offsets, every) == ends
