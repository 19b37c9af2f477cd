"""The app's conversation: requests read and validated, answers, observations, dead letters."""

import base64
import json
import math

import pytest

from utils.data import default_spec
from utils.form import Form
from utils.messages.codec import MessageError, decode_object, encode
from utils.messages.requests import (
    DeadLetter,
    Observation,
    Prediction,
    PredictionError,
    PredictionRequest,
    answer_from_dict,
    peek_request_id,
)

FORM = Form(default_spec())
VALID = {
    "age": 39,
    "workclass": "State-gov",
    "fnlwgt": 77516,
    "education": "Bachelors",
    "education_num": 13,
    "marital_status": "Never-married",
    "occupation": "Adm-clerical",
    "relationship": "Not-in-family",
    "race": "White",
    "gender": "Male",
    "capital_gain": 2174,
    "capital_loss": 0,
    "hours_per_week": 40,
    "native_country": "United-States",
}


def with_data(**changes):
    data = {**VALID, **changes}
    return {"request_id": "r1", "data": {k: v for k, v in data.items() if v is not ...}}


@pytest.mark.parametrize(
    "payload, code",
    [
        ({"data": VALID}, "missing_request_id"),
        ({"request_id": "", "data": VALID}, "missing_request_id"),
        ({"request_id": 7, "data": VALID}, "missing_request_id"),
        ({"request_id": "x" * 129, "data": VALID}, "invalid_request_id"),
        ({"request_id": "x\ny", "data": VALID}, "invalid_request_id"),
        ({"request_id": "a\tb", "data": VALID}, "invalid_request_id"),
        ({"request_id": "r1"}, "invalid_type"),
        ({"request_id": "r1", "data": [1]}, "invalid_type"),
        ({"request_id": "r1", "data": VALID, "extra": 1}, "unknown_field"),
        (with_data(age=...), "missing_field"),
        (with_data(colour="red"), "unknown_field"),
        (with_data(age="abc"), "invalid_type"),
        (with_data(age=True), "invalid_type"),
        (with_data(age=-1), "out_of_range"),
        (with_data(age=4000), "out_of_range"),
        (with_data(fnlwgt=math.inf), "out_of_range"),
        (with_data(workclass=["Private"]), "invalid_type"),
        (with_data(workclass=3), "invalid_type"),
        (with_data(occupation="x" * 101), "out_of_range"),
        (with_data(income_bracket="maybe"), "invalid_label"),
        (with_data(income_bracket=2), "invalid_label"),
        (with_data(income_bracket=0.5), "invalid_label"),
    ],
)
def test_prediction_request_rejects(payload, code):
    with pytest.raises(MessageError) as caught:
        PredictionRequest.from_dict(payload, FORM)
    assert caught.value.code == code
    assert caught.value.message


@pytest.mark.parametrize(
    "changes, label",
    [
        ({}, None),
        ({"income_bracket": ">50K"}, 1),
        ({"income_bracket": "<=50K."}, 0),
        ({"income_bracket": 1}, 1),
        ({"workclass": None}, None),
        ({"workclass": "Never-seen-before"}, None),
        ({"age": 39.5}, None),
    ],
)
def test_prediction_request_accepts(changes, label):
    request = PredictionRequest.from_dict(with_data(**changes), FORM)
    assert request.request_id == "r1"
    assert request.label == label
    assert set(request.features) == set(VALID)


def test_request_error_carries_request_id():
    with pytest.raises(MessageError) as caught:
        PredictionRequest.from_dict(with_data(age="abc"), FORM)
    assert caught.value.request_id == "r1"


def test_request_round_trip():
    request = PredictionRequest.from_dict(with_data(income_bracket=">50K"), FORM)
    assert PredictionRequest.from_dict(json.loads(encode(request.to_dict(FORM))), FORM) == request


@pytest.mark.parametrize(
    "answer",
    [
        Prediction("r1", 1, 0.75, 3),
        Prediction("r3", 0, 0.25, 4, role="challenger"),
        PredictionError("r2", "invalid_type", "age must be a number"),
    ],
)
def test_answer_round_trip(answer):
    assert answer_from_dict(decode_object(encode(answer.to_dict()))) == answer


@pytest.mark.parametrize(
    "raw, request_id",
    [
        (b'{"request_id": "abc", "data": {"x": "' + b"y" * 9000 + b'"}}', "abc"),
        (b'{"data": {"x": "' + b"y" * 9000 + b'"}, "request_id": "at-end"}', "at-end"),
        (b'{"request_id": "esc\\"aped", "data": 1}', 'esc"aped'),
        (b'{"data": {"x": "' + b"y" * 9000 + b'"}, "other": 1}', None),
        (b'{"request_id": 42}', None),
        (b'{"request_id": ""}', None),
        (b"\xff" * 10000, None),
    ],
)
def test_request_id_of_a_record_too_large_to_parse(raw, request_id):
    assert peek_request_id(raw) == request_id


@pytest.mark.parametrize(
    "scores, scoring_us, missed",
    [(None, None, None), ({3: 0.25, 4: 0.75}, {3: 12.5, 4: 80.0}, None), ({3: 0.25}, None, 4)],
)
def test_observation_round_trip(scores, scoring_us, missed):
    features = PredictionRequest.from_dict(with_data(), FORM).features
    observation = Observation("r1", features, 1, scores, scoring_us, missed)
    assert Observation.from_dict(decode_object(encode(observation.to_dict()))) == observation


def test_dead_letter_keeps_a_bounded_copy():
    raw = b"x" * 5000
    dead = DeadLetter.from_record(MessageError("invalid_json", "bad"), "app", 2, 17, raw, keep_bytes=100)
    assert dead.raw_size == 5000
    assert base64.b64decode(dead.raw_base64) == raw[:100]
    assert (dead.topic, dead.partition, dead.offset) == ("app", 2, 17)
