"""The one-pass decoder accepts exactly what the checked path accepts, with the same values, and
fails with the checked path's own errors: compared on hand-picked cases and on random requests."""

import json
import math
import random

import pytest

from tests.conftest import ADULT_RECORD
from utils.data import default_spec
from utils.form import Form
from utils.messages.codec import MessageError, decode_object
from utils.messages.requests import PredictionRequest
from utils.request_decoder import RequestDecoder
from utils.spec import DataFile, DatasetSpec, Field, Label

ADULT = Form(default_spec())
ODD = Form(
    DatasetSpec(
        "odd",
        (
            Field("Flight Date", "categorical", missing=("?", "NA")),
            Field("delay-min", "numeric", minimum=-60, maximum=600, required=False, nullable=True),
            Field("zip", "categorical", number_like=True, nullable=True),
            Field("weight", "numeric", minimum=0, maximum=1, required=False),
        ),
        Label("late", ("1",), ("0",), "binary"),
        (DataFile("odd.csv"),),
    )
)


def outcome(decode, raw: bytes):
    try:
        return ("ok", decode(raw))
    except MessageError as error:
        return ("error", error.code, error.message, error.request_id)


def both(form: Form, raw: bytes):
    fast = outcome(lambda value: RequestDecoder(form).decode(value)[0], raw)
    checked = outcome(lambda value: PredictionRequest.from_dict(decode_object(value), form), raw)
    return fast, checked


def request(data, request_id="r1", **top) -> bytes:
    return json.dumps({"request_id": request_id, "data": data, **top}).encode()  # writes NaN/Infinity


CASES = [
    request(ADULT_RECORD),
    request({**ADULT_RECORD, "income_bracket": ">50K."}),
    request({**ADULT_RECORD, "income_bracket": " <=50K "}),
    request({**ADULT_RECORD, "income_bracket": 1}),
    request({**ADULT_RECORD, "income_bracket": True}),
    request({**ADULT_RECORD, "income_bracket": None}),
    request({**ADULT_RECORD, "age": 39}),
    request({**ADULT_RECORD, "age": True}),
    request({**ADULT_RECORD, "age": "39"}),
    request({**ADULT_RECORD, "age": math.nan}),
    request({**ADULT_RECORD, "age": math.inf}),
    request({**ADULT_RECORD, "age": 1e400}),
    request({**ADULT_RECORD, "age": 10**30}),
    request({**ADULT_RECORD, "age": -1}),
    request({**ADULT_RECORD, "age": None}),
    request({**ADULT_RECORD, "workclass": None}),
    request({**ADULT_RECORD, "workclass": "  Private  "}),
    request({**ADULT_RECORD, "workclass": "?"}),
    request({**ADULT_RECORD, "workclass": "x" * 100}),
    request({**ADULT_RECORD, "workclass": "x" * 101}),
    request({**ADULT_RECORD, "workclass": 3}),
    request({**ADULT_RECORD, "unknown": 1}),
    request({k: v for k, v in ADULT_RECORD.items() if k != "age"}),
    request(ADULT_RECORD, explain=True),
    request(ADULT_RECORD, explain="yes"),
    request(ADULT_RECORD, extra=1),
    request(ADULT_RECORD, request_id=""),
    request(ADULT_RECORD, request_id="   "),
    request(ADULT_RECORD, request_id="a" * 128),
    request(ADULT_RECORD, request_id="a" * 129),
    request(ADULT_RECORD, request_id="tab\there"),
    request(ADULT_RECORD, request_id="ünïcode ✓"),
    request(ADULT_RECORD, request_id=7),
    json.dumps({"data": ADULT_RECORD}).encode(),
    json.dumps({"request_id": "r1", "data": [1]}).encode(),
    b'{"request_id": "r1", "request_id": "r2", "data": {}}',
    b"{oops",
    b"[1, 2]",
    b"\xff\xfe",
    b"",
    "\ufeff{}".encode(),
    b'{"request_id": "\\ud800", "data": {}}',
]


@pytest.mark.parametrize("raw", CASES)
def test_the_fast_path_agrees_with_the_checked_one(raw):
    fast, checked = both(ADULT, raw)
    assert fast == checked


def test_a_record_without_value_is_an_empty_message():
    with pytest.raises(MessageError, match="empty_message"):
        RequestDecoder(ADULT).decode(None)


POOL: list[object] = [
    None,
    True,
    False,
    0,
    1,
    -7,
    2.5,
    0.5,
    1e300,
    10**20,
    "",
    " ",
    "?",
    "NA",
    "x",
    " 3 ",
    "3",
    "1",
    "0",
    "z" * 101,
    [],
    {},
]


def random_request(rng: random.Random, form: Form) -> bytes:
    """Mostly valid requests, each value broken now and then in one of many ways."""
    data = {}
    for name in [*form.field_names, form.label_column]:
        roll = rng.random()
        if roll < 0.005:
            continue  # absent
        data[name] = rng.choice(POOL) if roll < 0.02 else _valid(form, name, rng)
    if rng.random() < 0.02:
        data["extra"] = 1
    top = {"explain": rng.choice([True, False, False, 1])} if rng.random() < 0.2 else {}
    request_id = rng.choice(["r1", "r 2", "ü-3"] * 10 + ["", "a\nb", 5])
    return request(data, request_id, **top)


def _valid(form: Form, name: str, rng: random.Random):
    bounds = {item.name: (float(item.minimum or 0), float(item.maximum or 0)) for item in form.spec.numeric}
    if name in bounds:
        low, high = bounds[name]
        return rng.choice([rng.uniform(low, high), int(low), high])
    if name == form.label_column:
        return rng.choice([*form.labels, 0, 1, True])
    number_like = {item.name for item in form.spec.categorical if item.number_like}
    return rng.choice(["A", "b ", "3", "?", *([4, 4.5] if name in number_like else [])])


@pytest.mark.parametrize("form", [ADULT, ODD], ids=["adult", "odd"])
def test_random_requests_get_the_same_outcome_both_ways(form):
    rng = random.Random(7)
    accepted = 0
    for _ in range(3000):
        raw = random_request(rng, form)
        fast, checked = both(form, raw)
        assert fast == checked, raw
        accepted += fast[0] == "ok"
    assert accepted > 300  # the comparison covers accepted requests too, not only refusals
