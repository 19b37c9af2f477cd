"""The sequential judgement of a challenger: the confidence sequence, its first crossing, the rule
around it (guardrails, budget, fixed fallback), and its error rates on simulated rollouts."""

from dataclasses import replace

import numpy as np
import pytest

from benchmarks.sequential import (
    AT_MARGIN_MISCALIBRATED,
    AT_MARGIN_NOISIER,
    BETTER,
    EQUAL,
    MUCH_WORSE,
    promoted_by_the_sequence,
    synthetic_rollouts,
    true_difference,
)
from train.rollout.guardrails import ChallengerHealth
from train.rollout.judgement import PROMOTE, REJECT, WAIT
from train.rollout.sequential import (
    FIXED,
    GUARDRAIL,
    SEQUENTIAL,
    confidence_sequence,
    first_crossings,
    judge_rollout,
    log_loss_differences,
    sequential_decision,
)
from utils.settings import JudgementSettings

RULE = JudgementSettings()  # the defaults: budget 500, log-loss margin 0.01, burn-in 100
HEALTHY = ChallengerHealth(asked=0, failed=0, scoring_us=None)


def one_rollout(challenger, pairs, seed=0):
    labels, champion, theirs = synthetic_rollouts(challenger, 1, pairs, seed)
    return labels[0], champion[0], theirs[0]


def test_the_sequence_is_the_running_mean_and_narrows_as_pairs_come_in():
    differences = np.random.default_rng(0).normal(0.02, 0.1, 4000)
    mean, low, high = confidence_sequence(differences, 0.95, tightest_at=500)
    assert mean[-1] == pytest.approx(differences.mean())
    assert np.all(low <= mean) and np.all(mean <= high)
    width = high - low
    assert width[3999] < width[999] < width[199]
    # Wider than the fixed-sample 95% interval at the same n: the price of looking at every pair.
    fixed_half = 1.96 * differences[:500].std() / np.sqrt(500)
    assert width[499] / 2 > fixed_half


def test_many_rollouts_at_once_give_each_rollouts_own_sequence():
    rows = np.random.default_rng(1).normal(0, 0.1, (3, 300))
    together = confidence_sequence(rows, 0.95, 300)
    for row in range(3):
        alone = confidence_sequence(rows[row], 0.95, 300)
        for both, single in zip(together, alone, strict=True):
            np.testing.assert_allclose(both[row], single)


@pytest.mark.parametrize(
    "low, high, burn_in, first, promotes",
    [
        ([-1, -1, -0.5, -0.4], [1, 0.5, 0.005, 0.001], 1, 2, True),  # high below the margin at pair 3
        ([-1, 0.02, 0.03, 0.04], [1, 0.5, 0.4, 0.3], 1, 1, False),  # low above it at pair 2
        ([-1, 0.02, 0.03, 0.04], [1, 0.5, 0.4, 0.3], 3, 2, False),  # not before the burn-in
        ([-1, -1, -1, -1], [1, 1, 1, 1], 1, -1, False),  # never settled
    ],
)
def test_first_crossings(low, high, burn_in, first, promotes):
    found, promoted = first_crossings(np.array(low), np.array(high), margin=0.01, burn_in=burn_in)
    assert (int(found[0]), bool(promoted[0])) == (first, promotes)


def test_the_same_model_is_promoted_at_the_burn_in_and_no_pairs_wait():
    assert sequential_decision(np.zeros(300), 0.01, 0.95, burn_in=100, tightest_at=500).pairs == 100
    assert sequential_decision(np.zeros(0), 0.01, 0.95, burn_in=100, tightest_at=500).decision == WAIT


def test_a_clearly_worse_challenger_is_rejected_in_far_fewer_pairs_than_the_budget():
    labels, champion, theirs = synthetic_rollouts(MUCH_WORSE, 200, RULE.min_labelled, seed=5)
    pairs = []
    for row in range(len(labels)):
        verdict = judge_rollout(labels[row], champion[row], theirs[row], HEALTHY, RULE)
        assert verdict.decision == REJECT and verdict.judgement is not None
        assert verdict.judgement.rule == SEQUENTIAL
        interval = verdict.judgement.log_loss_difference
        assert interval is not None and interval.low > RULE.log_loss_margin
        pairs.append(verdict.judgement.pairs)
    assert np.median(pairs) <= RULE.min_labelled / 3 and max(pairs) < RULE.min_labelled


@pytest.mark.parametrize("challenger", [EQUAL, BETTER])
def test_an_equal_or_better_challenger_is_promoted_by_the_sequence(challenger):
    labels, champion, theirs = one_rollout(challenger, 2000, seed=2)
    verdict = judge_rollout(labels, champion, theirs, HEALTHY, replace(RULE, min_labelled=2000))
    assert verdict.decision == PROMOTE and verdict.judgement is not None
    judgement = verdict.judgement
    assert judgement.rule == SEQUENTIAL and RULE.sequential_burn_in <= judgement.pairs < 2000
    assert judgement.log_loss_difference is not None and judgement.log_loss_difference.high < RULE.log_loss_margin
    assert verdict.figures is not None and verdict.figures.labelled == judgement.pairs, (
        "the figures are those of the pairs the decision took"
    )


def test_most_equal_challengers_are_promoted_within_the_default_budget():
    labels, champion, theirs = synthetic_rollouts(EQUAL, 300, RULE.min_labelled, seed=8)
    verdicts = [judge_rollout(labels[r], champion[r], theirs[r], HEALTHY, RULE) for r in range(300)]
    promoted = sum(v.decision == PROMOTE for v in verdicts) / len(verdicts)
    fixed_alone = replace(RULE, rule=FIXED)
    by_fixed = [judge_rollout(labels[r], champion[r], theirs[r], HEALTHY, fixed_alone) for r in range(300)]
    assert promoted >= 0.6 and promoted > sum(v.decision == PROMOTE for v in by_fixed) / len(by_fixed)


@pytest.mark.parametrize("challenger", [AT_MARGIN_NOISIER, AT_MARGIN_MISCALIBRATED])
def test_the_sequence_promotes_a_challenger_worse_by_the_margin_at_most_at_the_nominal_rate(challenger):
    """2,000 synthetic rollouts of a challenger whose true log-loss difference is the margin (measured
    on a million requests), each watched over 2,500 pairs without a budget (five times the default
    one): the share the sequence ever promotes is its type-I error."""
    margin = true_difference(challenger)
    rate = promoted_by_the_sequence(challenger, 2000, 2500, replace(RULE, log_loss_margin=margin))
    assert rate <= 1 - RULE.confidence


def test_within_the_budget_the_sequence_waits_and_says_where_it_stands():
    labels, champion, theirs = one_rollout(EQUAL, 150, seed=4)
    verdict = judge_rollout(labels[:50], champion[:50], theirs[:50], HEALTHY, RULE)
    assert verdict.decision == WAIT and verdict.judgement is not None
    assert verdict.judgement.pairs == 50 and verdict.figures is None


def test_at_the_budget_without_a_sequential_decision_the_fixed_rule_decides_on_the_budgets_pairs():
    labels, champion, theirs = one_rollout(AT_MARGIN_NOISIER, 700, seed=3)  # neither shown worse nor not
    rule = replace(RULE, min_labelled=600)
    waiting = judge_rollout(labels[:599], champion[:599], theirs[:599], HEALTHY, rule)
    assert waiting.decision == WAIT, "the sequence settles neither way within the budget"
    verdict = judge_rollout(labels, champion, theirs, HEALTHY, rule)
    assert verdict.decision in (PROMOTE, REJECT) and verdict.judgement is not None
    assert (verdict.judgement.rule, verdict.judgement.pairs) == (FIXED, 600)
    assert verdict.figures is not None and verdict.figures.labelled == 600
    interval = verdict.figures.auc_difference
    assert (verdict.decision == PROMOTE) is bool(interval.low >= -rule.margin)


@pytest.mark.parametrize(
    "health, rejected",
    [
        (ChallengerHealth(asked=200, failed=20, scoring_us=100.0), True),  # 10% errors
        (ChallengerHealth(asked=200, failed=2, scoring_us=9000.0), True),  # too slow
        (ChallengerHealth(asked=20, failed=20, scoring_us=None), False),  # too few to say
        (ChallengerHealth(asked=200, failed=2, scoring_us=100.0), False),
    ],
)
def test_guardrails_reject_at_once_whatever_the_labels_say(health, rejected):
    labels, champion, theirs = one_rollout(BETTER, 40, seed=1)
    verdict = judge_rollout(labels, champion, theirs, health, RULE)
    assert verdict.judgement is not None and verdict.judgement.health == health.to_dict()
    if rejected:
        assert verdict.decision == REJECT and verdict.judgement.rule == GUARDRAIL
        assert verdict.judgement.pairs == 40
    else:
        assert verdict.decision == WAIT


def test_the_fixed_rule_alone_is_delongs_as_before():
    labels, champion, theirs = one_rollout(EQUAL, 600, seed=6)
    fixed = replace(RULE, rule=FIXED)
    assert judge_rollout(labels[:499], champion[:499], theirs[:499], HEALTHY, fixed).decision == WAIT
    verdict = judge_rollout(labels, champion, theirs, HEALTHY, fixed)
    assert verdict.judgement is not None and (verdict.judgement.rule, verdict.judgement.pairs) == (FIXED, 600)
    assert verdict.figures is not None
    assert (verdict.decision == PROMOTE) is bool(verdict.figures.auc_difference.low >= -fixed.margin)


def test_log_loss_differences_are_challenger_minus_champion():
    labels = np.array([1, 0])
    assert log_loss_differences(labels, np.array([0.5, 0.5]), np.array([0.9, 0.1])) == pytest.approx(
        [np.log(0.5) - np.log(0.9)] * 2
    )
