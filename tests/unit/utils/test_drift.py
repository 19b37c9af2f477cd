import math

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ADULT_RECORD
from utils.drift import (
    EPSILON,
    PSI_WARNING,
    categorical_psi,
    drifted,
    feature_drift,
    numeric_psi,
    prediction_shift,
    psi,
)


@pytest.fixture(scope="module")
def spec(adult):
    return adult.spec


@pytest.fixture(scope="module")
def train(adult) -> pd.DataFrame:
    return adult.training


@pytest.fixture(scope="module")
def train_vs_train(spec, train) -> dict[str, float]:
    return feature_drift(spec, train, train)


@pytest.fixture(scope="module")
def train_vs_test(spec, train, adult) -> dict[str, float]:
    return feature_drift(spec, train, adult.evaluations["adult_test"])


@pytest.mark.parametrize(
    "expected, actual, value",
    [
        ([0.5, 0.5], [0.5, 0.5], 0.0),
        ([50, 50], [1, 1], 0.0),  # counts are normalised
        ([0.5, 0.5], [0.25, 0.75], 0.25 * math.log(2) + 0.25 * math.log(1.5)),
        ([1.0, 0.0], [0.0, 1.0], 2 * (1 - EPSILON) * math.log(1 / EPSILON)),  # empty bins stay finite
        ([0.5, 0.5], [0.0, 0.0], 0.0),  # an empty sample is no evidence
    ],
)
def test_psi(expected, actual, value):
    assert psi(np.array(expected), np.array(actual)) == pytest.approx(value, abs=1e-12)


def test_psi_refuses_different_bins():
    with pytest.raises(ValueError, match="different bins"):
        psi(np.ones(3), np.ones(4))


@pytest.mark.parametrize("name", ADULT_RECORD)
def test_identical_samples_do_not_drift(train_vs_train, name):
    assert train_vs_train[name] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("name", ADULT_RECORD)
def test_adult_test_split_is_close_to_training(train_vs_test, name):
    assert train_vs_test[name] < 0.1


def test_adult_test_split_drifts_nowhere(train_vs_test):
    assert list(train_vs_test) == list(ADULT_RECORD)
    assert drifted(train_vs_test) == []


@pytest.mark.parametrize(
    "name, shift",
    [
        ("age", lambda column: column + 20),
        ("hours_per_week", lambda column: column * 2),
        ("fnlwgt", lambda column: column * 0 + column.max() * 10),  # all beyond the reference's range
        ("capital_gain", lambda column: column + 5000),
        ("workclass", lambda column: column.map(lambda _: "Space-agency")),
        ("education", lambda column: column.map(lambda _: "Doctorate")),
        ("native_country", lambda column: column.map(lambda _: None)),
    ],
)
def test_shifted_feature_is_flagged_first(spec, train, name, shift):
    new = train.sample(n=2000, random_state=0).reset_index(drop=True)
    new[name] = shift(new[name])
    drift = feature_drift(spec, train, new)
    assert drift[name] > PSI_WARNING
    assert drifted(drift)[0] == name


@pytest.mark.parametrize(
    "new",
    [
        ["c"] * 100,
        ["c", "d", "e", "f"] * 25,  # every unseen category shares the one "other" bucket
        ["<other>"] * 100,  # a category literally named like the bucket is still unseen
    ],
)
def test_unseen_categories_go_to_the_other_bucket(new):
    reference = ["a", "b"] * 50
    everything_in_other = 2 * (0.5 - EPSILON) * math.log(0.5 / EPSILON) + (1 - EPSILON) * math.log(1 / EPSILON)
    assert categorical_psi(reference, new) == pytest.approx(everything_in_other)


@pytest.mark.parametrize("missing", ["?", " ? ", "", None, float("nan")])
def test_missing_categories_count_as_question_mark(missing):
    assert categorical_psi(["a", "?"] * 50, ["a", missing] * 50) == pytest.approx(0.0)


@pytest.mark.parametrize(
    "reference, new",
    [
        (np.zeros(100), np.zeros(100)),  # a constant column has one bin
        # deciles all 0: the bins are (-inf, 0] and (0, inf), so only the share of zeros counts
        (np.r_[np.zeros(92), np.arange(1, 9)], np.r_[np.zeros(92), np.arange(1, 9) * 1000]),
        (np.arange(100), np.arange(100)[::-1]),  # order does not matter
    ],
)
def test_numeric_psi_with_repeated_edges(reference, new):
    assert numeric_psi(reference, new) == pytest.approx(0.0)


def test_numeric_values_beyond_the_reference_land_in_the_outer_bins():
    assert numeric_psi(np.arange(100), np.full(100, -5.0)) == pytest.approx(numeric_psi(np.arange(100), np.zeros(100)))
    assert numeric_psi(np.arange(100), np.full(100, 1e6)) == pytest.approx(
        numeric_psi(np.arange(100), np.full(100, 99))
    )


@pytest.mark.parametrize("rows", [0, 1, 2])
def test_tiny_new_samples_do_not_raise(spec, train, rows):
    drift = feature_drift(spec, train, train.head(rows))
    assert list(drift) == ([] if rows == 0 else list(spec.field_names))
    assert all(math.isfinite(value) for value in drift.values())
    assert isinstance(drifted(drift), list)


@pytest.mark.parametrize(
    "function, reference, new",
    [
        (numeric_psi, np.arange(10), []),
        (numeric_psi, [], np.arange(10)),
        (numeric_psi, np.arange(10), [np.nan]),
        (categorical_psi, ["a", "b"], []),
        (categorical_psi, [], ["a"]),
    ],
)
def test_empty_samples_give_zero(function, reference, new):
    assert function(reference, new) == 0.0


@pytest.mark.parametrize(
    "new, psi_above, mean_shift, positive_rate_shift",
    [
        (np.linspace(0.01, 0.99, 1000), None, 0.0, 0.0),
        (np.linspace(0.01, 0.99, 1000) ** 0.25, PSI_WARNING, 0.303, 0.446),
        (np.full(1000, 0.05), PSI_WARNING, -0.45, -0.5),
    ],
)
def test_prediction_shift(new, psi_above, mean_shift, positive_rate_shift):
    shift = prediction_shift(np.linspace(0.01, 0.99, 1000), new)
    if psi_above is None:
        assert shift["probability_psi"] == pytest.approx(0.0)
    else:
        assert shift["probability_psi"] > psi_above
    assert shift["mean_probability_shift"] == pytest.approx(mean_shift, abs=0.01)
    assert shift["positive_rate_shift"] == pytest.approx(positive_rate_shift, abs=0.01)


@pytest.mark.parametrize("new", [[], [0.7]])
def test_prediction_shift_on_tiny_samples(new):
    shift = prediction_shift(np.linspace(0, 1, 100), np.array(new))
    if not new:
        assert shift == {}
    else:
        assert shift["positive_rate_shift"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "drift, threshold, names",
    [
        ({"a": 0.05, "b": 0.5, "c": 0.25}, PSI_WARNING, ["b", "c"]),
        ({"a": 0.05, "b": 0.5, "c": 0.25}, 0.0, ["b", "c", "a"]),
        ({"a": 0.2}, PSI_WARNING, []),  # strictly above
        ({}, PSI_WARNING, []),
    ],
)
def test_drifted(drift, threshold, names):
    assert drifted(drift, threshold) == names
