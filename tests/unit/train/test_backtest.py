"""The backtest's comparison: two versions' scores of the same observations, judged as a rollout."""

import numpy as np
import pytest

from benchmarks.sequential import WORSE, synthetic_rollouts
from train.backtest import Scored, compare
from utils.settings import JudgementSettings

RULE = JudgementSettings()


def scored(probabilities, refused=0, scoring_us=20.0):
    return Scored(np.asarray(probabilities, dtype=float), refused, scoring_us)


def test_swapping_the_versions_mirrors_every_difference():
    labels, champion, challenger = (array[0] for array in synthetic_rollouts(WORSE, 1, 1500, seed=2))
    forward = compare(2, 1, labels, scored(champion), scored(challenger), RULE)
    backward = compare(1, 2, labels, scored(challenger), scored(champion), RULE)
    assert forward.log_loss_sequence is not None and backward.log_loss_sequence is not None
    assert forward.figures is not None and backward.figures is not None
    for first, second in (
        (forward.log_loss_sequence, backward.log_loss_sequence),
        (forward.figures.auc_difference, backward.figures.auc_difference),
        (forward.figures.log_loss_difference, backward.figures.log_loss_difference),
    ):
        assert first.estimate == pytest.approx(-second.estimate, abs=1e-12)
        assert (first.low, first.high) == pytest.approx((-second.high, -second.low), abs=1e-12)
    assert (forward.verdict.decision, backward.verdict.decision) == ("reject", "promote")


def test_observations_a_version_refuses_are_left_unpaired_and_count_against_the_challenger():
    labels = np.array([1, 0] * 100)
    champion = np.where(labels == 1, 0.8, 0.2)
    challenger = champion.copy()
    challenger[:30] = np.nan  # its form refused these
    result = compare(2, 1, labels, scored(champion), scored(challenger, refused=30), RULE)
    assert (result.observations, result.pairs) == (200, 170)
    assert result.verdict.decision == "reject" and result.verdict.judgement is not None
    assert result.verdict.judgement.rule == "guardrail", "15% refused, above the 5% limit"
