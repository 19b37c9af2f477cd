"""Rollouts in the predictor's decisions: which model answers, what the paired tally records."""

import uuid

import pytest

from predict.batch import Challenger, canary_share, decide, role_of
from tests.unit.predict.test_batch import LIMIT, TOP, FixedScorer, record, request
from utils.messages.requests import CHALLENGER, CHAMPION

IDS = [str(uuid.UUID(int=n)) for n in range(10_000)]


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.25, 0.5])
def test_the_canary_share_of_ten_thousand_ids_is_within_two_points(fraction):
    share = sum(role_of(request_id, fraction) == CHALLENGER for request_id in IDS) / len(IDS)
    assert abs(share - fraction) <= 0.02


@pytest.mark.parametrize("request_id", ["r1", "order-42", "ünïcode ✓", "x" * 128])
def test_a_request_id_always_gets_the_same_role(request_id):
    assert len({canary_share(request_id) for _ in range(3)}) == 1
    assert {role_of(request_id, 0.5) for _ in range(3)} in ({CHAMPION}, {CHALLENGER})


@pytest.mark.parametrize("fraction, role", [(0.0, CHAMPION), (1.0, CHALLENGER)])
def test_the_ends_of_the_canary_fraction(fraction, role):
    assert {role_of(request_id, fraction) for request_id in IDS[:500]} == {role}


def test_in_a_shadow_rollout_the_champion_answers_and_both_models_are_tallied():
    records = [record(request("a", label=">50K"), 0), record(request("b"), 1), record(request("c", label="<=50K"), 2)]
    shadow = Challenger(FixedScorer(version=4, probability=0.3))
    outcome = decide(records, FixedScorer(version=3, probability=0.8), LIMIT, TOP, shadow)
    assert [(a.model_version, a.role, a.prediction) for a in outcome.answers] == [(3, CHAMPION, 1)] * 3
    assert [(o.request_id, o.label, o.scores) for o in outcome.observations] == [
        ("a", 1, {3: 0.8, 4: 0.3}),
        ("c", 0, {3: 0.8, 4: 0.3}),
    ]
    assert outcome.shadow is not None and outcome.shadow.model_version == 4 and len(outcome.shadow.requests) == 3
    for observation in outcome.observations:
        assert observation.missed is None
        assert observation.scoring_us is not None and set(observation.scoring_us) == {3, 4}
        assert min(observation.scoring_us.values()) >= 0


def test_in_a_canary_rollout_the_challenger_answers_its_share_with_its_own_figures():
    records = [record(request(request_id), offset) for offset, request_id in enumerate(IDS[:400])]
    canary = Challenger(FixedScorer(version=4, probability=0.3), canary_fraction=0.25)
    outcome = decide(records, FixedScorer(version=3, probability=0.8), LIMIT, TOP, canary)
    for answer in outcome.answers:
        expected = (4, 0.3, 0) if role_of(answer.request_id, 0.25) == CHALLENGER else (3, 0.8, 1)
        assert (answer.model_version, answer.probability, answer.prediction) == expected
        assert answer.role == role_of(answer.request_id, 0.25)
    assert 0 < sum(a.role == CHALLENGER for a in outcome.answers) < 400


def test_without_a_challenger_answers_are_the_champions_and_observations_carry_no_scores():
    outcome = decide([record(request("a", label=">50K"))], FixedScorer(version=3), LIMIT, TOP)
    assert [(a.role, a.model_version) for a in outcome.answers] == [(CHAMPION, 3)]
    assert outcome.observations[0].scores is None and outcome.shadow is None
    assert outcome.observations[0].to_dict().keys() == {"request_id", "features", "label"}


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_a_failing_challenger_leaves_the_champion_answering_every_request(fraction):
    records = [record(request("a", label=">50K")), record(request("b"))]
    broken = Challenger(FixedScorer(version=4, fail=True), canary_fraction=fraction)
    outcome = decide(records, FixedScorer(version=3), LIMIT, TOP, broken)
    assert [(a.request_id, a.model_version, a.role) for a in outcome.answers] == [
        ("a", 3, CHAMPION),
        ("b", 3, CHAMPION),
    ]
    assert outcome.errors == () and outcome.shadow is None
    assert [(o.request_id, o.scores, o.missed) for o in outcome.observations] == [("a", None, 4)], (
        "the trial's error rate counts it"
    )
