import pytest

from train.rollout.decision import holdout_gate, should_make_current, should_start_trial
from utils.model_store import VersionMetadata


@pytest.mark.parametrize(
    "champion, challenger, tolerance, promoted",
    [
        (0.92, 0.93, 0.005, True),
        (0.92, 0.92, 0.005, True),
        (0.92, 0.9151, 0.005, True),
        (0.92, 0.9149, 0.005, False),
        (0.92, 0.90, 0.005, False),
        (0.92, 0.90, 1.0, True),
        (0.92, 0.919, 0.0, False),
    ],
)
def test_champion_challenger_gate(champion, challenger, tolerance, promoted):
    decided, reason = holdout_gate({"holdout_auc": champion}, tolerance)({"holdout_auc": challenger})
    assert decided is promoted
    assert f"{challenger:.4f}" in reason and f"{champion:.4f}" in reason


@pytest.mark.parametrize(
    "version, metadata, history, expected",
    [
        (2, {"promoted": True}, [1], True),
        (2, {"promoted": False}, [1], False),
        (2, {}, [1], True),  # versions from before the gate existed
        (2, {"promoted": True}, [1, 2, 1], False),  # rolled back from 2: a restart must not undo it
        (1, {"promoted": True}, [], True),
    ],
)
def test_a_version_is_made_current_once(version, metadata, history, expected):
    assert should_make_current(version, VersionMetadata.from_dict(metadata), history) is expected


SHADOWED = {"promoted": True, "rollout": {"mode": "shadow", "canary_fraction": 0.0}}
CANARIED = {"promoted": True, "rollout": {"mode": "canary", "canary_fraction": 0.1}}


@pytest.mark.parametrize(
    "metadata, history, made_current, on_trial",
    [
        ({"promoted": True, "rollout": {"mode": "direct"}}, [1], True, False),
        (SHADOWED, [1], False, True),
        (CANARIED, [1], False, True),
        ({**SHADOWED, "promoted": False}, [1], False, False),  # the holdout gate refused it: no trial
        ({**SHADOWED, "rollout_decision": {"promoted": True, "decided_by": "operator"}}, [1], True, False),
        ({**CANARIED, "rollout_decision": {"promoted": False, "decided_by": "live judgement"}}, [1], False, False),
        (
            {**SHADOWED, "rollout_decision": {"promoted": True, "decided_by": "operator"}},
            [1, 2, 1],
            False,
            False,
        ),  # rolled back since
        (SHADOWED, [1, 2], False, False),  # an operator promoted it by hand
    ],
)
def test_a_version_trained_under_a_rollout_serves_only_after_its_trial(metadata, history, made_current, on_trial):
    typed = VersionMetadata.from_dict(metadata)
    assert should_make_current(2, typed, history) is made_current
    assert should_start_trial(2, typed, history) is on_trial
