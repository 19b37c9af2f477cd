"""The retraining data read back: readable observations once per request id, as a frame."""

import pytest

from tests.conftest import ADULT_RECORD
from train.observations import observations_frame, once_per_request
from utils.data import TARGET, default_spec
from utils.form import Form
from utils.kafka.interface import Record
from utils.messages.codec import encode
from utils.messages.requests import Observation

SPEC = default_spec()
ADULT = Form(SPEC)
FORM = {**ADULT_RECORD, "occupation": None}  # a missing category


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
        # an observation of another form (an earlier lineage) does not fit the serving one
        ([encode({"request_id": "e", "features": {"colour": "red"}, "label": 1}), observation("f", 1)], [("f", 1)]),
    ],
)
def test_once_per_request(values, expected):
    kept = once_per_request(records(*values), ADULT)
    assert [(o.request_id, o.label) for o in kept] == expected


def test_the_frame_has_the_form_s_columns_and_the_label_and_missing_values_stay_missing():
    frame = observations_frame(once_per_request(records(observation("a", 1)), ADULT), SPEC)
    assert list(frame.columns) == [*FORM, TARGET]
    assert frame.loc[0, "occupation"] is None and frame.loc[0, TARGET] == 1


def test_no_observations_make_an_empty_frame_with_the_columns():
    frame = observations_frame([], SPEC)
    assert len(frame) == 0 and TARGET in frame.columns
