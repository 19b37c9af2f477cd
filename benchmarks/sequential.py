"""How many labelled pairs the sequential judgement of a challenger takes, and how often it promotes a
worse one, on synthetic rollouts (train/rollout/sequential.py).

A synthetic rollout: each request has a true log-odds `z` (its label drawn from it), the champion
says `z + e` (e: its own error, sd 0.4) and the challenger `z + a*e + b*f + c` (f: an error of its
own, c: a calibration offset). So a challenger can share most of the champion's errors (as two
retrains on nearly the same data do), add errors, remove some, or be miscalibrated; its true
log-loss difference is measured on a million requests. Every rollout goes through the trainer's
rule with its default settings: the confidence sequence on the first pairs, DeLong's fixed rule at
the budget for the rollouts the sequence did not settle.

    python -m benchmarks.sequential                 # 2,000 rollouts per kind, about ten seconds
    python -m benchmarks.sequential --rollouts 500 --budget 1000
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from train.rollout.guardrails import ChallengerHealth
from train.rollout.judgement import PROMOTE, REJECT, WAIT
from train.rollout.sequential import FIXED, confidence_sequence, first_crossings, judge_rollout, log_loss_differences
from utils.settings import JudgementSettings

CHAMPION_ERROR = 0.4
HEALTHY = ChallengerHealth(asked=0, failed=0, scoring_us=None)
ROLLOUTS_PER_CHUNK = 250


@dataclass(frozen=True)
class Challenger:
    """How a synthetic challenger differs from the champion (see the module's docstring)."""

    name: str
    shared: float = 1.0  # a: the share of the champion's error it keeps
    own: float = 0.0  # b: the sd of an error of its own
    offset: float = 0.0  # c: its calibration offset, in log-odds


MUCH_WORSE = Challenger("much worse", own=2.0)
WORSE = Challenger("worse", own=1.0)
EQUAL = Challenger("equal", shared=0.9, own=CHAMPION_ERROR * np.sqrt(1 - 0.9**2))  # as much error, partly its own
BETTER = Challenger("better", shared=0.5)
# Worse at or just beyond the default margin (0.01), by noise or by miscalibration.
AT_MARGIN_NOISIER = Challenger("at the margin, noisier", own=0.375)
AT_MARGIN_MISCALIBRATED = Challenger("at the margin, miscalibrated", offset=0.355)


def synthetic_rollouts(
    challenger: Challenger, rollouts: int, pairs: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, the champion's and the challenger's probabilities: arrays of rollouts x pairs."""
    rng = np.random.default_rng(seed)
    shape = (rollouts, pairs)
    truth = rng.normal(-1.3, 1.6, shape)  # about a quarter positives, as in Adult
    labels = (rng.random(shape) < 1 / (1 + np.exp(-truth))).astype(np.int64)
    error = rng.normal(0, CHAMPION_ERROR, shape)
    theirs = truth + challenger.shared * error + challenger.own * rng.normal(0, 1, shape) + challenger.offset
    return labels, 1 / (1 + np.exp(-(truth + error))), 1 / (1 + np.exp(-theirs))


def true_difference(challenger: Challenger, seed: int = 99) -> float:
    """The challenger's log-loss difference per request, on a million requests."""
    labels, champion, theirs = synthetic_rollouts(challenger, 1, 1_000_000, seed)
    return float(log_loss_differences(labels[0], champion[0], theirs[0]).mean())


def promoted_by_the_sequence(challenger: Challenger, rollouts: int, horizon: int, rule: JudgementSettings) -> float:
    """The share of rollouts the confidence sequence alone promotes within `horizon` pairs (no budget),
    simulated by chunks of rollouts (a chunk's arrays are a few tens of megabytes)."""
    promoted = 0
    for chunk, start in enumerate(range(0, rollouts, ROLLOUTS_PER_CHUNK)):
        size = min(ROLLOUTS_PER_CHUNK, rollouts - start)
        labels, champion, theirs = synthetic_rollouts(challenger, size, horizon, seed=11 + chunk)
        differences = log_loss_differences(labels, champion, theirs)
        _, low, high = confidence_sequence(differences, rule.confidence, rule.min_labelled)
        _, promotes = first_crossings(low, high, rule.log_loss_margin, rule.sequential_burn_in)
        promoted += int(promotes.sum())
    return promoted / rollouts


@dataclass(frozen=True)
class Outcomes:
    pairs: np.ndarray  # pairs each rollout's decision took
    decisions: Sequence[str]
    rules: Sequence[str]

    def share(self, decision: str) -> float:
        return sum(d == decision for d in self.decisions) / len(self.decisions)

    def by_rule(self, rule: str) -> float:
        return sum(r == rule for r in self.rules) / len(self.rules)


def decide_rollouts(challenger: Challenger, rollouts: int, rule: JudgementSettings, seed: int = 3) -> Outcomes:
    """Every rollout through the trainer's rule on its budget of pairs."""
    labels, champion, theirs = synthetic_rollouts(challenger, rollouts, rule.min_labelled, seed)
    pairs, decisions, rules = [], [], []
    for row in range(rollouts):
        verdict = judge_rollout(labels[row], champion[row], theirs[row], HEALTHY, rule)
        assert verdict.decision != WAIT and verdict.judgement is not None
        pairs.append(verdict.judgement.pairs)
        decisions.append(verdict.decision)
        rules.append(verdict.judgement.rule)
    return Outcomes(np.array(pairs), decisions, rules)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollouts", type=int, default=2000, help="synthetic rollouts per kind of challenger")
    parser.add_argument("--budget", type=int, default=JudgementSettings.min_labelled, help="--shadow-min-labelled")
    parser.add_argument("--horizon", type=int, default=5000, help="pairs the type-I check runs the sequence for")
    args = parser.parse_args(argv)
    rule = replace(JudgementSettings(), min_labelled=args.budget)
    print(
        f"rule: {rule.confidence:.0%} confidence sequence on the log-loss difference, margin {rule.log_loss_margin}, "
        f"burn-in {rule.sequential_burn_in}, budget {rule.min_labelled} pairs, then DeLong (AUC margin {rule.margin})"
    )
    print(
        "promote/reject: shares of rollouts; by DeLong: decided at the budget; pairs: median and p90 to the decision;"
    )
    print("fixed alone: the share the fixed rule alone (--shadow-judgement fixed) promotes at the budget")
    header = (
        f"{'challenger':<30} {'true diff':>9} {'promote':>8} {'reject':>7} {'by DeLong':>9} {'median':>7} {'p90':>5}"
    )
    print(f"{header} {'fixed alone':>11}")
    fixed_rule = replace(rule, rule=FIXED)
    for challenger in (MUCH_WORSE, WORSE, EQUAL, BETTER, AT_MARGIN_NOISIER, AT_MARGIN_MISCALIBRATED):
        outcomes = decide_rollouts(challenger, args.rollouts, rule)
        fixed = decide_rollouts(challenger, args.rollouts, fixed_rule)
        print(
            f"{challenger.name:<30} {true_difference(challenger):>+9.4f} {outcomes.share(PROMOTE):>8.1%} "
            f"{outcomes.share(REJECT):>7.1%} {outcomes.by_rule(FIXED):>9.1%} "
            f"{np.median(outcomes.pairs):>7.0f} {np.percentile(outcomes.pairs, 90):>5.0f} {fixed.share(PROMOTE):>11.1%}"
        )
    for challenger in (AT_MARGIN_NOISIER, AT_MARGIN_MISCALIBRATED):
        margin = true_difference(challenger)
        at_margin = replace(rule, log_loss_margin=margin)
        rate = promoted_by_the_sequence(challenger, args.rollouts, args.horizon, at_margin)
        print(
            f"type-I, {challenger.name} (margin set to its true difference {margin:+.4f}): the sequence alone "
            f"promoted {rate:.2%} of {args.rollouts} rollouts within {args.horizon} pairs "
            f"(nominal {1 - rule.confidence:.0%})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
