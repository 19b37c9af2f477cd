import numpy as np
import pytest

from tests.conftest import ADULT_RECORD as SMOKE_RECORD
from utils.data import frame_columns, frame_to_records
from utils.features import UNKNOWN_CODE, FeatureLayout, Preprocessor, PreprocessorFormatError
from utils.spec import DataFile, DatasetSpec, Field, Label


@pytest.fixture(scope="module")
def spec(adult):
    return adult.spec


@pytest.fixture(scope="module")
def train(adult):
    return adult.training.head(3000)


@pytest.fixture(scope="module")
def fitted(spec, train):
    return Preprocessor.fit(spec, frame_columns(train, spec))


def column(fitted, name):
    return fitted.layout.names.index(name)


def test_numeric_columns_are_min_max_scaled(fitted, spec, train):
    matrix = fitted.transform(frame_columns(train, spec))
    assert matrix.shape == (len(train), len(fitted.layout.names)) == (3000, 16)
    assert matrix[:, column(fitted, "age")].min() == 0.0
    assert matrix[:, column(fitted, "age")].max() == 1.0


@pytest.mark.parametrize(
    "field, value",
    [
        ("workclass", "Space-agency"),
        ("workclass", None),
        ("workclass", "?"),
        ("occupation", "Astronaut"),
        ("native_country", None),
    ],
)
def test_unseen_or_missing_category_maps_to_unknown(fitted, field, value):
    row = fitted.transform_records([{**SMOKE_RECORD, field: value}])[0]
    assert row[column(fitted, field)] == UNKNOWN_CODE
    crossed = [name for name in fitted.layout.categorical_columns if field in name.split("_x_")]
    assert all(row[column(fitted, name)] == UNKNOWN_CODE for name in crossed)


def test_known_categories_get_codes(fitted):
    row = fitted.transform_records([SMOKE_RECORD])[0]
    assert all(row[column(fitted, name)] != UNKNOWN_CODE for name in ("workclass", "education_x_occupation"))


def test_json_round_trip_gives_identical_output(fitted, spec, train):
    restored = Preprocessor.from_json(fitted.to_json(), spec)
    records = frame_to_records(train.head(200), spec)
    assert np.array_equal(restored.transform_records(records), fitted.transform_records(records))


def test_one_row_equals_its_row_in_a_batch(fitted, spec, train):
    records = frame_to_records(train.head(50), spec)
    batch = fitted.transform_records(records)
    for i in (0, 17, 49):
        assert np.array_equal(fitted.transform_records([records[i]])[0], batch[i])


@pytest.mark.parametrize("text", ["not json", "{}", '{"format_version": 99, "feature_names": []}'])
def test_bad_json_is_refused(spec, text):
    with pytest.raises(PreprocessorFormatError):
        Preprocessor.from_json(text, spec)


def test_a_preprocessor_of_another_spec_is_refused(fitted):
    other = DatasetSpec(
        "other",
        (Field("x", "numeric", 0, 1), Field("colour", "categorical")),
        Label("y", ("1",), ("0",)),
        (DataFile("other.csv"),),
    )
    with pytest.raises(PreprocessorFormatError, match="does not match the spec 'other'"):
        Preprocessor.from_json(fitted.to_json(), other)


@pytest.mark.parametrize(
    "names, safe",
    [
        (("age", "hours_per_week"), ("age", "hours_per_week")),
        (("Flight Status", "Competitive?", "ZIP Code"), ("Flight_Status", "Competitive_", "ZIP_Code")),
        (("a b", "a-b", ""), ("a_b", "a_b_1", "column_2")),
    ],
)
def test_model_column_names_are_ones_lightgbm_accepts_and_stay_distinct(names, safe):
    assert FeatureLayout(names, (), ()).model_names == safe


def test_a_missing_number_stays_missing(fitted):
    row = fitted.transform_records([{**SMOKE_RECORD, "age": None}])[0]
    assert np.isnan(row[column(fitted, "age")])
