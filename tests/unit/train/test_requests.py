import json

import pytest

from train.pipeline import retrain_cause_tags
from train.requests import RetrainTarget, retrain_target
from utils.kafka.interface import Record
from utils.messages.codec import encode
from utils.messages.events import ModelRefused, RetrainRequested, TrainingCompleted
from utils.model_store import RetrainCause, VersionMetadata


def records(*payloads):
    return [Record("retrain_topic", 0, offset, None, payload) for offset, payload in enumerate(payloads)]


@pytest.mark.parametrize(
    "batch, target",
    [
        (records(), None),
        (records(encode(RetrainRequested(50).to_dict())), (50, 1)),
        (records(*(encode(RetrainRequested(end).to_dict()) for end in (50, 150, 100))), (150, 3)),
        (
            records(
                encode(TrainingCompleted(2, True, {}, 1, 50).to_dict()),
                encode(ModelRefused(2, "bad").to_dict()),
                b"garbage",
                None,
                encode(RetrainRequested(75).to_dict()),
            ),
            (75, 1),
        ),
        (records(encode(TrainingCompleted(2, True, {}, 1, 50).to_dict())), None),
    ],
)
def test_requests_of_a_poll_are_coalesced_into_one_retrain(batch, target):
    found = retrain_target(batch)
    assert (None if found is None else (found.observations_end_offset, found.coalesced)) == target


DRIFT_AGE = {"feature": "age", "psi": 0.4, "window": 1000}


def test_coalesced_requests_keep_every_reason_and_its_evidence():
    requests = [
        RetrainRequested(50, "p1"),
        RetrainRequested(60, "p2", "drift", DRIFT_AGE, 3),
        RetrainRequested(70, "p1", "drift", {**DRIFT_AGE, "psi": 0.5}, 3),
        RetrainRequested(55, "p3", "quality", {"lower_bound": 0.41}, 3),
    ]
    target = retrain_target(records(*(encode(r.to_dict()) for r in requests)))
    assert target is not None
    assert (target.observations_end_offset, target.coalesced, target.reasons) == (70, 4, ("count", "drift", "quality"))
    causes = target.causes()
    assert causes["drift"] == RetrainCause("drift", "p1", {**DRIFT_AGE, "psi": 0.5}, 3, requests=2)
    assert causes["count"].requests == 1 and causes["quality"].evidence == {"lower_bound": 0.41}


@pytest.mark.parametrize(
    "judged, latest, left",
    [
        ([3, 3], 3, 2),  # about the serving version: both stand
        ([3, 4], 4, 1),  # one was made before version 4 was trained
        ([3, 3], 4, 0),  # the same drift, seen by two predictors, after the retrain it caused
        ([0, 3], 9, 1),  # a count is never stale (its end offset decides: already covered or not)
    ],
)
def test_a_request_made_before_the_latest_version_is_stale(judged, latest, left):
    requests = [RetrainRequested(10 + i, f"p{i}", "drift" if v else "count", {}, v) for i, v in enumerate(judged)]
    fresh = RetrainTarget(20, len(requests), tuple(requests)).without_stale(latest)
    assert (0 if fresh is None else fresh.coalesced) == left


def test_the_causes_go_into_the_metadata_and_the_mlflow_tags():
    target = RetrainTarget(70, 2, (RetrainRequested(50, "p1"), RetrainRequested(70, "p2", "drift", DRIFT_AGE, 3)))
    metadata = VersionMetadata(retrain_causes=target.causes())
    assert VersionMetadata.from_dict(json.loads(metadata.to_json())) == metadata
    tags = retrain_cause_tags(target.causes())
    assert tags["retrain_reasons"] == "count,drift"
    assert json.loads(tags["retrain_drift_evidence"]) == {**DRIFT_AGE, "requested_by": "p2", "requests": 1}


def test_metadata_from_before_causes_has_none():
    assert VersionMetadata.from_dict({"version": 3}).retrain_causes == {}
