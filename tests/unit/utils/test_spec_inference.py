"""A draft spec inferred from CSV files as users have them: awkward names, quotes, markers of
missing values, numbers that are codes, labels of every kind, and files that cannot be one."""

import gzip
from pathlib import Path

import pytest

from utils.data import load_dataset
from utils.spec import SpecError, load_spec, to_toml
from utils.spec_inference import infer_spec

ROOT = Path(__file__).resolve().parents[3]


def csv(tmp_path: Path, text: str, name: str = "form.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


ROWS = "\n".join(
    [
        'Customer Postcode,"Competitive?",Income,Plan,Notes,Churned',
        '02134,1,52000,"basic, monthly",,yes',
        "10001,0,61000.5,premium,?,no",
        '94110,1,?,"basic, monthly",late payer,no',
        "60601,0,48000,premium,,yes",
    ]
)


def field(inferred, name):
    return next(item for item in inferred.spec.fields if item.name == name)


def test_names_quotes_markers_and_codes(tmp_path):
    inferred = infer_spec(csv(tmp_path, ROWS), "Churned", positive="yes")
    spec = inferred.spec
    assert spec.field_names == ("Customer Postcode", "Competitive?", "Income", "Plan", "Notes")
    postcode = field(inferred, "Customer Postcode")
    assert (postcode.kind, postcode.number_like, postcode.required) == ("categorical", True, True), "leading zeros"
    income = field(inferred, "Income")
    assert income.kind == "numeric" and income.missing == ("?",) and not income.required and income.nullable
    span = 61000.5 - 48000
    assert (income.minimum, income.maximum) == (48000 - span / 2, 61000.5 + span / 2), "the range and half of it"
    plan = field(inferred, "Plan")
    assert plan.kind == "categorical" and plan.required, "a quoted comma is part of the value"
    notes = field(inferred, "Notes")
    assert set(notes.missing) == {"", "?"} and not notes.required
    assert (spec.label.column, spec.label.positive, spec.label.negative, spec.label.kind) == (
        "Churned",
        ("yes",),
        ("no",),
        "text",
    )
    assert field(inferred, "Competitive?").kind == "numeric", "0/1 in a field is a number"
    assert inferred.rows == 4 and len(spec.files[0].sha256) == 64


@pytest.mark.parametrize(
    "column, values, kind, number_like",
    [
        ("zip", ["94110", "10001", "60601"], "categorical", True),  # named like a code
        ("ZIP Code", ["94110", "10001", "60601"], "categorical", True),
        ("store_id", ["1", "2", "3"], "categorical", True),
        ("day", ["1", "2", "7"], "numeric", False),
        ("price", ["1.5", "-2", "3e2"], "numeric", False),
        ("colour", ["red", "blue", "3"], "categorical", False),
        ("flag", ["true", "false", "true"], "categorical", False),
    ],
)
def test_numbers_that_are_codes_stay_categories(tmp_path, column, values, kind, number_like):
    rows = [f"{column},y", *(f"{value},{label}" for value, label in zip(values, "010", strict=True))]
    inferred = infer_spec(csv(tmp_path, "\n".join(rows)), "y")
    assert (field(inferred, column).kind, field(inferred, column).number_like) == (kind, number_like)


@pytest.mark.parametrize(
    "values, positive, kind, expected_positive",
    [
        (["0", "1", "1"], None, "binary", "1"),
        (["0.0", "1.0", "0.0"], None, "binary", "1.0"),
        (["true", "false", "true"], None, "boolean", "true"),
        (["False", "True", "True"], None, "boolean", "True"),
        (["ontime", "delayed", "ontime"], "delayed", "text", "delayed"),
    ],
)
def test_labels_that_need_no_positive_and_those_that_do(tmp_path, values, positive, kind, expected_positive):
    rows = ["x,label", *(f"{i},{value}" for i, value in enumerate(values))]
    label = infer_spec(csv(tmp_path, "\n".join(rows)), "label", positive=positive).spec.label
    assert (label.kind, label.positive[0]) == (kind, expected_positive)


@pytest.mark.parametrize(
    "text, label, positive, ignore, message",
    [
        ("", "y", None, (), "is empty"),
        ("x,y\n", "y", None, (), "has a header but no rows"),
        ("x,y\n1,0\n2,1\n", "target", None, (), "has no column 'target' for the label; its columns are ['x', 'y']"),
        ("x,y\n1,a\n2,b\n3,c\n", "y", "a", (), "label 'y' has 3 values ['a', 'b', 'c']"),
        ("x,y\n1,a\n2,b\n", "y", None, (), "say which one is positive with --positive"),
        ("x,y\n1,a\n2,b\n", "y", "c", (), "--positive 'c' is not a value of label 'y'"),
        ("x,y\n1,a\n2,a\n", "y", None, (), "label 'y' has 1 value(s)"),
        ("x,c,y\n1,k,0\n2,k,1\n", "y", None, (), "column 'c' holds one value ('k') in every row"),
        ("x,c,y\n1,k,0\n2,k,1\n", "y", None, ("nope",), "--ignore names column(s) ['nope']"),
        ("x,x,y\n1,2,0\n3,4,1\n", "y", None, (), "names a column twice: ['x']"),
        ('x,y\n"1,0\n', "y", None, (), "does not parse as CSV"),
        ("x,y\n?,0\n,1\n", "y", None, (), "holds one value"),
    ],
)
def test_files_that_cannot_give_a_spec_are_refused_in_one_line(tmp_path, text, label, positive, ignore, message):
    with pytest.raises(SpecError) as refused:
        infer_spec(csv(tmp_path, text), label, positive, ignore)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_constant_column_can_be_left_out(tmp_path):
    inferred = infer_spec(csv(tmp_path, "x,c,y\n1,k,0\n2,k,1\n"), "y", ignore=("c",))
    assert inferred.spec.field_names == ("x",) and inferred.spec.ignore == ("c",)


@pytest.mark.parametrize(
    "text, encoding",
    [
        ("\ufeffAge,Plan,y\r\n30,a,0\r\n40,b,1\r\n", "utf-8"),  # a byte-order mark and CRLF endings
        ("Age,Plan,y\n30,a,0\n40,b,1\n", "utf-8"),
    ],
)
def test_a_byte_order_mark_and_crlf_endings_change_nothing(tmp_path, text, encoding):
    inferred = infer_spec(csv(tmp_path, text, encoding=encoding), "y")
    assert inferred.spec.field_names == ("Age", "Plan")
    assert field(inferred, "Plan").missing == ()
    dataset = load_dataset(inferred.spec)
    assert {*dataset.training["Plan"], *dataset.holdout["Plan"]} == {"a", "b"}, "no \\r, no mark left in a value"
    assert {*dataset.training["Age"], *dataset.holdout["Age"]} == {30.0, 40.0}


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    with pytest.raises(SpecError, match="not UTF-8"):
        infer_spec(csv(tmp_path, "x,y\ncafé,0\nthé,1\n", encoding="latin-1"), "y")


def test_a_gzipped_file_and_the_draft_round_trip(tmp_path):
    path = tmp_path / "form.csv.gz"
    path.write_bytes(gzip.compress(ROWS.encode()))
    inferred = infer_spec(path, "Churned", positive="yes")
    written = tmp_path / "spec.toml"
    written.write_text(to_toml(inferred.spec.relative_to(tmp_path), inferred.notes))
    again = load_spec(written)
    assert (again.fields, again.label) == (inferred.spec.fields, inferred.spec.label)
    assert again.files[0].path == "form.csv.gz" and again.form_digest() == inferred.spec.form_digest()
    dataset = load_dataset(again)
    assert len(dataset.training) + len(dataset.holdout) == 4


def test_the_bundled_second_data_set_infers_the_committed_spec():
    folder = ROOT / "data" / "flight_delays"
    inferred = infer_spec(
        folder / "FlightDelays.csv.gz", "Flight Status", "delayed", ("DEP_TIME", "TAIL_NUM", "FL_DATE")
    )
    assert to_toml(inferred.spec.relative_to(folder), inferred.notes) == (folder / "spec.toml").read_text()
