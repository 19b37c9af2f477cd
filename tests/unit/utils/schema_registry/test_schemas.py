"""The schemas a spec is registered with, and Avro requests read back into the JSON request shape."""

import io
import json

import fastavro
import jsonschema
import pytest

from tests.conftest import ADULT_RECORD
from utils.data import default_spec
from utils.form import Form
from utils.messages.codec import MessageError
from utils.messages.requests import Explanation, Prediction, PredictionError, PredictionRequest, answer_from_dict
from utils.schema_registry import wire
from utils.schema_registry.schemas import (
    AvroAnswers,
    AvroReader,
    answer_schema,
    avro_names,
    avro_request,
    avro_string_prefix,
    request_schema,
)
from utils.spec import DataFile, DatasetSpec, Field, Label

SPEC = default_spec()
FORM = Form(SPEC)


def odd_spec() -> DatasetSpec:
    """Names an Avro record cannot hold as they are, two of them colliding once made valid."""
    return DatasetSpec(
        name="odd",
        fields=(
            Field("Flight Date", "categorical"),
            Field("flight_date", "categorical", required=False, nullable=True),
            Field("3rd-party %", "numeric", minimum=0, maximum=100, nullable=True),
            Field("zip", "categorical", number_like=True),
        ),
        label=Label("is late?", ("yes",), ("no",)),
        files=(DataFile("odd.csv"),),
    )


def avro_bytes(schema_text: str, record: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(json.loads(schema_text)), record)
    return out.getvalue()


def test_avro_names_are_valid_and_unique():
    names = avro_names(odd_spec())
    assert names == {
        "Flight Date": "Flight_Date",
        "flight_date": "flight_date",
        "3rd-party %": "_3rd_party__",
        "zip": "zip",
        "is late?": "is_late_",
    }
    clash = DatasetSpec(
        name="clash",
        fields=(Field("a-b", "categorical"), Field("a_b", "categorical")),
        label=Label("y", ("1",), ("0",), "binary"),
        files=(DataFile("clash.csv"),),
    )
    assert list(avro_names(clash).values()) == ["a_b", "a_b_2", "y"]


@pytest.mark.parametrize("spec", [SPEC, odd_spec()], ids=["adult", "odd names"])
def test_an_avro_request_reads_back_as_the_json_request(spec):
    form = Form(spec)
    data = {item.name: ("3" if item.kind == "categorical" else 7.0) for item in spec.fields}
    data[spec.label.column] = spec.label.positive[0]
    payload = {"request_id": "r-1", "data": data, "explain": True}
    text = request_schema(spec, "avro")
    read = AvroReader.of(text).read(avro_bytes(text, avro_request(payload, spec)), form.required)
    assert read == payload
    request = PredictionRequest.from_dict(read, form)
    assert request.request_id == "r-1" and request.label == 1 and request.explain


def test_an_optional_field_left_null_in_avro_is_absent_from_the_request():
    spec = odd_spec()
    payload = {"request_id": "r", "data": {"Flight Date": "2024-01-01", "zip": 3.0}}
    text = request_schema(spec, "avro")
    read = AvroReader.of(text).read(avro_bytes(text, avro_request(payload, spec)), Form(spec).required)
    # flight_date may be absent: its null is an absent key; 3rd-party % is required, and null is its value
    assert read["data"] == {"Flight Date": "2024-01-01", "3rd-party %": None, "zip": 3.0}
    assert PredictionRequest.from_dict(read, Form(spec)).features["zip"] == "3"


@pytest.mark.parametrize(
    "payload, readable_id",
    [
        (b"", None),
        (b"\x02", None),  # a string of length 1 that is not there
        (b"\x06abc\xff\xff\xff", "abc"),  # the id, then garbage
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", None),  # a varint that never ends
    ],
)
def test_an_undecodable_avro_payload_is_a_schema_mismatch(payload, readable_id):
    reader = AvroReader.of(request_schema(SPEC, "avro"))
    with pytest.raises(MessageError) as raised:
        reader.read(payload, FORM.required)
    assert raised.value.code == "schema_mismatch"
    assert avro_string_prefix(payload) == readable_id


def test_the_json_request_schema_is_draft_07_and_accepts_what_the_form_accepts():
    schema = json.loads(request_schema(SPEC, "json"))
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    validator = jsonschema.Draft7Validator(schema)
    assert not list(validator.iter_errors({"request_id": "r", "data": ADULT_RECORD}))
    assert list(validator.iter_errors({"request_id": "r", "data": {**ADULT_RECORD, "age": "old"}}))


ANSWERS = [
    Prediction("r1", 1, 0.75, 3),
    Prediction("r2", 0, 0.25, 4, Explanation(1.5, -2.0, (("age", 0.5), ("sex", -0.25)), 0.125), "challenger"),
    PredictionError("r3", "schema_mismatch", "no such schema"),
]


@pytest.mark.parametrize("answer", ANSWERS, ids=["prediction", "explained", "error"])
def test_every_answer_fits_the_answer_schemas(answer):
    payload = answer.to_dict()
    assert answer_from_dict(AvroAnswers().decode(AvroAnswers().encode(payload))) == answer
    assert not list(jsonschema.Draft7Validator(json.loads(answer_schema("json"))).iter_errors(payload))


@pytest.mark.parametrize(
    "value, framed, schema_id",
    [
        (wire.frame(7, b"{}"), True, 7),
        (wire.frame(2**32 - 1, b""), True, 2**32 - 1),
        (b'{"request_id": "r"}', False, None),
        (b"\x00\x00\x00", False, None),  # too short for a header
        (None, False, None),
    ],
)
def test_the_wire_format_header(value, framed, schema_id):
    assert wire.is_framed(value) is framed
    if framed:
        assert wire.schema_id_of(value) == schema_id
        assert wire.frame(schema_id, wire.payload_of(value)) == value
