import pytest

from train.trainer_service import auc_gate


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
    decided, reason = auc_gate({"holdout_auc": champion}, tolerance)({"holdout_auc": challenger})
    assert decided is promoted
    assert f"{challenger:.4f}" in reason and f"{champion:.4f}" in reason
