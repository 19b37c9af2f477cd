import numpy as np
import pytest

from utils.data import frame_columns, frame_to_records, load_train
from utils.features import CATEGORICAL_COLUMNS, FEATURE_NAMES, UNKNOWN_CODE, Preprocessor, PreprocessorFormatError
from utils.scoring import SMOKE_RECORD


@pytest.fixture(scope="module")
def train():
    return load_train().head(3000)


@pytest.fixture(scope="module")
def fitted(train):
    return Preprocessor.fit(frame_columns(train))


def column(name):
    return FEATURE_NAMES.index(name)


def test_numeric_columns_are_min_max_scaled(fitted, train):
    matrix = fitted.transform(frame_columns(train))
    assert matrix.shape == (len(train), len(FEATURE_NAMES))
    assert matrix[:, column("age")].min() == 0.0
    assert matrix[:, column("age")].max() == 1.0


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
    assert row[column(field)] == UNKNOWN_CODE
    crossed = [name for name in CATEGORICAL_COLUMNS if field in name.split("_x_")]
    assert all(row[column(name)] == UNKNOWN_CODE for name in crossed)


def test_known_categories_get_codes(fitted):
    row = fitted.transform_records([SMOKE_RECORD])[0]
    assert all(row[column(name)] != UNKNOWN_CODE for name in ("workclass", "education_x_occupation"))


def test_json_round_trip_gives_identical_output(fitted, train):
    restored = Preprocessor.from_json(fitted.to_json())
    records = frame_to_records(train.head(200))
    assert np.array_equal(restored.transform_records(records), fitted.transform_records(records))


def test_one_row_equals_its_row_in_a_batch(fitted, train):
    records = frame_to_records(train.head(50))
    batch = fitted.transform_records(records)
    for i in (0, 17, 49):
        assert np.array_equal(fitted.transform_records([records[i]])[0], batch[i])


@pytest.mark.parametrize("text", ["not json", "{}", '{"format_version": 99, "feature_names": []}'])
def test_bad_json_is_refused(text):
    with pytest.raises(PreprocessorFormatError):
        Preprocessor.from_json(text)
