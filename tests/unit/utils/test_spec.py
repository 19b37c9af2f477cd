"""Dataset specs: read, written, checked, compared."""

from dataclasses import replace
from pathlib import Path

import pytest

from utils.spec import DataFile, DatasetSpec, Field, Label, SpecError, form_changes, load_spec, spec_from_text, to_toml

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", ["adult", "flight_delays"])
def test_the_bundled_specs_read_write_and_read_back_the_same(name):
    spec = load_spec(ROOT / "data" / name / "spec.toml")
    again = spec_from_text(to_toml(spec), spec.folder)
    assert again == spec and again.form_digest() == spec.form_digest()


def test_any_string_is_a_name_the_toml_keeps(tmp_path):
    odd = ["Flight Status", "Competitive?", 'quote " and \\ backslash', "tab\tand\u00e9", "del\x7f"]
    fields = tuple(Field(name, "categorical") for name in odd[1:])
    spec = DatasetSpec("odd", fields, Label(odd[0], ("a",), ("b",)), (DataFile("x.csv"),))
    assert spec_from_text(to_toml(spec), tmp_path).field_names == tuple(odd[1:])


@pytest.mark.parametrize(
    "text, message",
    [
        ("not = [toml", "not valid TOML"),
        ('name = "x"', "missing 'data'"),
        (
            'name = "x"\n[label]\ncolumn="y"\npositive=["1"]\nnegative=["0"]\n[data]\n[[data.file]]\npath="a.csv"\n'
            '[[field]]\nname="a"\nkind="numeric"\n',
            "needs min and max",
        ),
        (
            'name = "x"\n[label]\ncolumn="a"\npositive=["1"]\nnegative=["0"]\n[data]\n[[data.file]]\npath="a.csv"\n'
            '[[field]]\nname="a"\nkind="categorical"\n',
            "is also a field",
        ),
        (
            'name = "x"\n[label]\ncolumn="y"\npositive=["1"]\nnegative=["1"]\n[data]\n[[data.file]]\npath="a.csv"\n'
            '[[field]]\nname="a"\nkind="categorical"\n',
            "none in both",
        ),
        (
            'name = "x"\n[label]\ncolumn="y"\npositive=["1"]\nnegative=["0"]\n[data]\n[[data.file]]\npath="a.csv"\n'
            '[[field]]\nname="a"\nkind="text"\n',
            "numeric or categorical",
        ),
        (
            'name = "x"\n[label]\ncolumn="y"\npositive=["1"]\nnegative=["0"]\n[data]\n[[data.file]]\npath="a.csv"\n'
            '[[field]]\nname="a"\nkind="categorical"\n[[cross]]\nfields=["a", "b"]\n',
            "'b' is not a categorical field",
        ),
        ('name = "x"\nformat = 2\n', "spec format 2"),
    ],
)
def test_a_spec_that_cannot_be_used_is_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(SpecError) as refused:
        load_spec(path)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_missing_spec_file_is_one_line(tmp_path):
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_spec(tmp_path / "nope.toml")


def test_form_changes_say_what_a_request_of_the_old_form_meets(adult):
    spec = adult.spec
    assert form_changes(spec, spec) == ""
    fewer = replace(spec, fields=spec.fields[1:], crosses=())
    assert form_changes(spec, fewer) == "fields removed ['age']"
    retyped = replace(
        spec, fields=(replace(spec.fields[0], kind="categorical", minimum=None, maximum=None), *spec.fields[1:])
    )
    assert form_changes(spec, retyped) == "fields changed ['age']"
    assert form_changes(fewer, spec) == "fields added ['age']"
    assert fewer.form_digest() != spec.form_digest() != retyped.form_digest()


def test_a_stored_spec_names_bundled_files_from_the_project_and_others_absolutely(adult, tmp_path):
    stored = adult.spec.for_store()
    assert stored.files[0].path == "data/adult/adult.data.gz" and stored.path_of(stored.files[0]).is_file()
    mine = replace(adult.spec, files=(DataFile(str(tmp_path / "mine.csv")),), folder=tmp_path)
    assert mine.for_store().files[0].path == str(tmp_path / "mine.csv")
