"""The retraining data read back: readable observations once per request id, as a frame."""

import pytest

from train.observations import observations_frame, once_per_request
from utils.kafka.interface import Record
from utils.messages.codec import encode
from utils.messages.requests import Observation

FORM = {
    "age": 39.0,
    "workclass": "State-gov",
    "fnlwgt": 77516.0,
    "education": "Bachelors",
    "education_num": 13.0,
    "marital_status": "Never-married",
    "occupation": None,
    "relationship": "Not-in-family",
    "race": "White",
    "gender": "Male",
    "capital_gain": 2174.0,
    "capital_loss": 0.0,
    "hours_per_week": 40.0,
    "native_country": "United-States",
}


def records(*values: bytes | None) -> list[Record]:
    return [Record("observations", 0, offset, None, value) for offset, value in enumerate(values)]


def observation(request_id: str, label: int, **changes) -> bytes:
    return encode(Observation(request_id, {**FORM, **changes}, label).to_dict())


@pytest.mark.parametrize(
    "values, expected",
    [
        ([], []),
        ([observation("a", 0), observation("b", 1)], [("a", 0), ("b", 1)]),
        # a replayed batch wrote "a" twice: it counts once, with its last copy
        ([observation("a", 0), observation("b", 1), observation("a", 1)], [("a", 1), ("b", 1)]),
        # unreadable records and invalid observations are skipped, the rest kept
        ([b"{oops", None, observation("a", 0, age=-5), observation("c", 0)], [("c", 0)]),
        ([encode({"request_id": "d", "features": FORM})], []),  # no label
    ],
)
def test_once_per_request(values, expected):
    kept = once_per_request(records(*values))
    assert [(o.request_id, o.label) for o in kept] == expected


def test_the_frame_has_the_form_s_columns_and_the_label_and_spells_nulls_as_the_files_do():
    frame = observations_frame(once_per_request(records(observation("a", 1))))
    assert list(frame.columns) == [*FORM, "label"]
    assert frame.loc[0, "occupation"] == "?" and frame.loc[0, "label"] == 1


def test_no_observations_make_an_empty_frame_with_the_columns():
    frame = observations_frame([])
    assert len(frame) == 0 and "label" in frame.columns
