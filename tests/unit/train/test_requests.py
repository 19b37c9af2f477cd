import pytest

from train.requests import RetrainTarget, retrain_target
from utils.kafka.interface import Record
from utils.messages.codec import encode
from utils.messages.events import ModelRefused, RetrainRequested, TrainingCompleted


def records(*payloads):
    return [Record("retrain_topic", 0, offset, None, payload) for offset, payload in enumerate(payloads)]


@pytest.mark.parametrize(
    "batch, target",
    [
        (records(), None),
        (records(encode(RetrainRequested(50).to_dict())), RetrainTarget(50, 1)),
        (
            records(*(encode(RetrainRequested(end).to_dict()) for end in (50, 150, 100))),
            RetrainTarget(150, 3),
        ),
        (
            records(
                encode(TrainingCompleted(2, True, {}, 1, 50).to_dict()),
                encode(ModelRefused(2, "bad").to_dict()),
                b"garbage",
                None,
                encode(RetrainRequested(75).to_dict()),
            ),
            RetrainTarget(75, 1),
        ),
        (records(encode(TrainingCompleted(2, True, {}, 1, 50).to_dict())), None),
    ],
)
def test_requests_of_a_poll_are_coalesced_into_one_retrain(batch, target):
    assert retrain_target(batch) == target
