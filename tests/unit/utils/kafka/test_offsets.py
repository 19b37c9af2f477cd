import pytest

from utils.kafka.interface import Partition, Record
from utils.kafka.offsets import commit_offsets, replay_offsets


def records(*positions):
    return [Record("t", partition, offset, None, b"") for partition, offset in positions]


@pytest.mark.parametrize(
    "batch, commit, replay",
    [
        (records(), {}, {}),
        (records((0, 5)), {Partition("t", 0): 6}, {Partition("t", 0): 5}),
        (
            records((0, 5), (1, 2), (0, 6), (1, 3), (2, 0)),
            {Partition("t", 0): 7, Partition("t", 1): 4, Partition("t", 2): 1},
            {Partition("t", 0): 5, Partition("t", 1): 2, Partition("t", 2): 0},
        ),
    ],
)
def test_commit_after_the_last_and_replay_from_the_first(batch, commit, replay):
    assert commit_offsets(batch) == commit
    assert replay_offsets(batch) == replay
