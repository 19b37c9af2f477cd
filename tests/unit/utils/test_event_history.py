"""Questions asked of the recent model events: the rollout in progress, what was announced."""

import pytest

from utils.event_history import already_announced, readable_events, rollout_in_progress
from utils.messages.codec import encode
from utils.messages.events import (
    ChallengerStarted,
    ModelRolledBack,
    RetrainRequested,
    RolloutDecided,
    TrainingCompleted,
)

SHADOW_2 = ChallengerStarted(2, 1, "shadow")
CANARY_3 = ChallengerStarted(3, 1, "canary", 0.1)


@pytest.mark.parametrize(
    "messages, expected",
    [
        ([], None),
        ([SHADOW_2], SHADOW_2),
        ([SHADOW_2, RetrainRequested(50), TrainingCompleted(3, False, {}, 1, 50)], SHADOW_2),
        ([SHADOW_2, RolloutDecided(2, True, "live judgement")], None),
        ([SHADOW_2, RolloutDecided(2, False, "superseded"), CANARY_3], CANARY_3),
        ([SHADOW_2, RolloutDecided(9, False, "operator")], SHADOW_2),  # about another version
    ],
)
def test_the_rollout_in_progress_after_a_sequence_of_events(messages, expected):
    assert rollout_in_progress(messages) == expected


@pytest.mark.parametrize(
    "messages, version, serving, expected",
    [
        ([], 2, True, False),
        ([TrainingCompleted(2, True, {}, 1, 50)], 2, True, True),
        ([TrainingCompleted(2, False, {}, 1, 50)], 2, True, False),  # a trial promoted it since
        ([TrainingCompleted(2, True, {}, 1, 50), TrainingCompleted(3, True, {}, 1, 75)], 2, True, True),
        ([TrainingCompleted(3, True, {}, 1, 75)], 2, True, False),
    ],
)
def test_a_version_is_announced_once(messages, version, serving, expected):
    assert already_announced(messages, version, serving) is expected


def test_unreadable_event_records_are_skipped():
    values = [encode(RetrainRequested(50).to_dict()), b"{oops", None, encode(ModelRolledBack(1).to_dict())]
    assert readable_events(values) == [RetrainRequested(50), ModelRolledBack(1)]
