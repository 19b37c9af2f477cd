"""Events: one class each, the same on the wire both ways, refused when they do not fit."""

import pytest

from utils.messages.codec import MessageError, decode_object, encode
from utils.messages.events import (
    ChallengerStarted,
    ModelRefused,
    ModelRolledBack,
    RetrainRequested,
    RolloutDecided,
    TrainingCompleted,
    event_from_dict,
    serving_version,
)


@pytest.mark.parametrize(
    "message",
    [
        RetrainRequested(50, "predictor-1"),
        RetrainRequested(60, "p2", "drift", {"feature": "age", "psi": 0.31, "window": 1000}, 3),
        RetrainRequested(70, "p2", "quality", {"live_log_loss": 0.41, "lower_bound": 0.37}, 3),
        TrainingCompleted(2, True, {"holdout_auc": 0.92}, 32611, 50),
        ModelRefused(3, "checksum mismatch", "predictor-1"),
        ModelRolledBack(1, 2, "rollback-host"),
        ModelRolledBack(4),
        ChallengerStarted(5, 4, "shadow", 0.0, 1200),
        ChallengerStarted(5, 4, "canary", 0.1, 0),
        RolloutDecided(5, True, "live judgement", "not worse"),
        RolloutDecided(5, False, "rollback"),
    ],
)
def test_every_event_survives_the_wire(message):
    assert event_from_dict(decode_object(encode(message.to_dict()))) == message


@pytest.mark.parametrize(
    "message, version",
    [
        (TrainingCompleted(2, True, {}, 1, 0), 2),
        (TrainingCompleted(2, False, {}, 1, 0), None),
        (ModelRolledBack(1, 2), 1),
        (RetrainRequested(50), None),
        (ModelRefused(3, "bad"), None),
        (ChallengerStarted(5, 4, "shadow"), None),
        (RolloutDecided(5, True, "operator"), 5),
        (RolloutDecided(5, False, "live judgement"), None),
    ],
)
def test_which_events_make_predictors_swap(message, version):
    assert serving_version(message) == version


@pytest.mark.parametrize(
    "payload",
    [
        {"event": "nope"},
        {"event": "retrain_requested"},
        {},
        {"event": "challenger_started", "version": 5, "champion_version": 4, "mode": "direct"},
        {"event": "challenger_started", "version": 5, "champion_version": 4, "mode": "canary", "canary_fraction": 2},
        {"event": "rollout_decided", "version": 5},
    ],
)
def test_events_that_do_not_fit_are_refused(payload):
    with pytest.raises(MessageError):
        event_from_dict(payload)


@pytest.mark.parametrize(
    "payload, code",
    [
        ({"event": "training_completed", "version": "2", "promoted": True, "metrics": {}, "trained_rows": 1,
          "observations_end_offset": 0}, "invalid_event"),
        ({"event": "training_completed", "version": 2, "promoted": "yes", "metrics": {}, "trained_rows": 1,
          "observations_end_offset": 0}, "invalid_event"),
        ({"event": "rollout_decided", "version": 5, "promoted": True, "decided_by": "someone"}, "invalid_event"),
        ({"event": "model_refused", "version": 2.5, "reason": "x"}, "invalid_event"),
        ({"event": 7}, "invalid_event"),
    ],
)  # fmt: skip
def test_a_value_of_the_wrong_type_is_refused_not_converted(payload, code):
    with pytest.raises(MessageError) as refused:
        event_from_dict(payload)
    assert refused.value.code == code


def test_the_wire_form_names_the_event_and_unknown_fields_are_ignored():
    wire = RetrainRequested(50, "p1").to_dict()
    assert wire == {
        "event": "retrain_requested",
        "observations_end_offset": 50,
        "requested_by": "p1",
        "reason": "count",
        "evidence": {},
        "newest_version_known": 0,
    }
    assert event_from_dict({**wire, "added_later": [1, 2]}) == RetrainRequested(50, "p1")


def test_a_retrain_request_from_before_reasons_is_a_count():
    old = {"event": "retrain_requested", "observations_end_offset": 50, "requested_by": "p1"}
    assert event_from_dict(old) == RetrainRequested(50, "p1", "count", {}, 0)


def test_a_retrain_request_with_an_unknown_reason_is_refused():
    with pytest.raises(MessageError):
        event_from_dict({"event": "retrain_requested", "observations_end_offset": 5, "reason": "boredom"})
