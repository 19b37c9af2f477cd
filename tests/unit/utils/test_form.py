"""Every error code means the same for any spec: a form with names that are not identifiers, a
number that may be missing, a numeric-looking category, and each kind of label."""

import math

import jsonschema
import pytest

from utils.form import Form, number_text
from utils.messages.codec import MessageError
from utils.spec import DataFile, DatasetSpec, Field, Label, LabelKind

FIELDS = (
    Field("Customer Postcode", "categorical", number_like=True),
    Field("Competitive?", "numeric", 0, 1),
    Field("Income", "numeric", 0, 1e6, required=False, nullable=True, missing=("?",)),
    Field("Plan", "categorical", missing=("",)),
    Field("Notes", "categorical", required=False, nullable=True, missing=("?", "")),
)


def form_of(kind: LabelKind = "text", positive=("yes",), negative=("no",)) -> Form:
    return Form(DatasetSpec("churn", FIELDS, Label("Churned", positive, negative, kind), (DataFile("churn.csv"),)))


FORM = form_of()
VALID = {"Customer Postcode": "02134", "Competitive?": 1, "Income": 52000, "Plan": "basic, monthly"}


def data(**changes):
    merged = {**VALID, **changes}
    return {name: value for name, value in merged.items() if value is not ...}


@pytest.mark.parametrize(
    "payload, code, names",
    [
        (data(Plan=...), "missing_field", "Plan"),
        (data(**{"Competitive?": ...}), "missing_field", "Competitive?"),
        ({**data(), "plan": "x"}, "unknown_field", "plan"),
        (data(Income="52000"), "invalid_type", "Income must be a number or null, got str"),
        (data(**{"Competitive?": None}), "invalid_type", "Competitive? must be a number, got NoneType"),
        (data(**{"Competitive?": True}), "invalid_type", "Competitive?"),
        (data(Income=-1), "out_of_range", "Income must be between 0 and 1e+06"),
        (data(Income=math.nan), "out_of_range", "Income"),
        (data(Income=math.inf), "out_of_range", "Income"),
        (data(**{"Competitive?": 2}), "out_of_range", "Competitive?"),
        (data(Plan=None), "invalid_type", "Plan must be a string, got NoneType"),
        (data(Plan=3), "invalid_type", "Plan must be a string, got int"),
        (data(Plan="x" * 101), "out_of_range", "Plan is longer than 100"),
        (data(**{"Customer Postcode": True}), "invalid_type", "Customer Postcode must be a string or a number"),
        (data(**{"Customer Postcode": math.nan}), "invalid_type", "Customer Postcode"),
        (data(Notes=["x"]), "invalid_type", "Notes must be a string or null"),
    ],
)
def test_each_error_code_names_the_field_of_any_form(payload, code, names):
    with pytest.raises(MessageError) as refused:
        FORM.features(payload)
    assert refused.value.code == code and names in refused.value.message


@pytest.mark.parametrize(
    "changes, name, value",
    [
        ({}, "Notes", None),  # absent and optional: no value
        ({"Notes": "?"}, "Notes", None),  # a missing marker
        ({"Notes": "  late  "}, "Notes", "late"),
        ({"Income": None}, "Income", None),
        ({"Income": ...}, "Income", None),
        ({"Customer Postcode": 2134}, "Customer Postcode", "2134"),  # a JSON number, matched by its text
        ({"Customer Postcode": 94110.0}, "Customer Postcode", "94110"),
        ({"Plan": "never seen before"}, "Plan", "never seen before"),  # scored as unknown
        ({"Plan": ""}, "Plan", None),
        ({"Competitive?": 0.0}, "Competitive?", 0.0),
    ],
)
def test_values_an_app_sends_for_a_csv_row_are_accepted(changes, name, value):
    features = FORM.features(data(**changes))
    assert features[name] == value and list(features) == [item.name for item in FIELDS]


@pytest.mark.parametrize(
    "kind, positive, negative, sent, expected",
    [
        ("text", ("yes",), ("no",), "yes", 1),
        ("text", ("yes",), ("no",), " no ", 0),
        ("text", ("yes",), ("no",), 1, 1),
        ("text", ("yes",), ("no",), None, None),
        ("binary", ("1",), ("0",), "1", 1),
        ("binary", ("1",), ("0",), 0, 0),
        ("binary", ("1",), ("0",), 1.0, 1),
        ("binary", ("1",), ("0",), True, 1),
        ("boolean", ("true", "True"), ("false", "False"), False, 0),
        ("boolean", ("true", "True"), ("false", "False"), "True", 1),
        ("boolean", ("true", "True"), ("false", "False"), 1, 1),
    ],
)
def test_labels_in_the_forms_an_app_sends_them(kind, positive, negative, sent, expected):
    assert form_of(kind, positive, negative).label({**VALID, "Churned": sent}) == expected


@pytest.mark.parametrize(
    "kind, positive, negative, sent",
    [
        ("text", ("yes",), ("no",), "maybe"),
        ("text", ("yes",), ("no",), True),  # only a 0/1 or true/false label takes booleans
        ("text", ("yes",), ("no",), 1.0),
        ("text", ("yes",), ("no",), 2),
        ("binary", ("1",), ("0",), 0.5),
        ("binary", ("1",), ("0",), "2"),
    ],
)
def test_other_labels_are_refused(kind, positive, negative, sent):
    with pytest.raises(MessageError) as refused:
        form_of(kind, positive, negative).label({**VALID, "Churned": sent})
    assert refused.value.code == "invalid_label" and "Churned must be" in refused.value.message


@pytest.mark.parametrize(
    "value, text", [(3, "3"), (3.0, "3"), (2.5, "2.5"), (-7, "-7"), (1e20, "100000000000000000000")]
)
def test_number_text(value, text):
    assert number_text(value) == text


def test_the_json_schema_says_what_the_form_takes():
    schema = FORM.json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    data_schema = schema["properties"]["data"]
    assert data_schema["required"] == ["Customer Postcode", "Competitive?", "Plan"]
    assert data_schema["additionalProperties"] is False
    properties = data_schema["properties"]
    assert properties["Income"] == {"type": ["number", "null"], "minimum": 0, "maximum": 1000000}
    assert properties["Customer Postcode"]["type"] == ["string", "number"]
    assert properties["Notes"]["type"] == ["string", "null"]
    assert set(properties["Churned"]["enum"]) == {"yes", "no", 0, 1, None}
    assert schema["required"] == ["request_id", "data"]


@pytest.mark.parametrize(
    "changes, accepted",
    [
        ({}, True),
        ({"Income": None, "Notes": "?"}, True),
        ({"Customer Postcode": 2134}, True),
        ({"Plan": ...}, False),
        ({"Income": "52000"}, False),
        ({"Income": -1}, False),
        ({"Plan": None}, False),
        ({"Plan": "x" * 101}, False),
        ({"extra": 1}, False),
    ],
)
def test_the_json_schema_agrees_with_the_form(changes, accepted):
    """What an app team validates on its side (a real JSON Schema validator) is what the predictor
    accepts."""
    validator = jsonschema.Draft202012Validator(FORM.json_schema())
    jsonschema.Draft202012Validator.check_schema(FORM.json_schema())
    payload = {"request_id": "r1", "data": data(**changes)}
    try:
        FORM.features(payload["data"])
        form_accepts = True
    except MessageError:
        form_accepts = False
    assert validator.is_valid(payload) is accepted is form_accepts


def test_the_adult_schema_is_valid_and_takes_the_demo_s_requests(adult_form, adult):
    from utils.data import frame_to_records
    from utils.messages.requests import PredictionRequest

    schema = adult_form.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    rows = frame_to_records(adult.stream.head(200), adult.spec)
    for number, row in enumerate(rows):
        request = PredictionRequest(f"r{number}", row, number % 2).to_dict(adult_form)
        assert validator.is_valid(request), list(validator.iter_errors(request))[:1]
