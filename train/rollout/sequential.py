"""Judging a challenger sequentially: a decision at any labelled pair, as soon as the evidence allows.

The statistic is the paired per-request difference of log loss, challenger minus champion: both
models scored the same labelled request, so `D_i = loss_challenger_i - loss_champion_i` and the
question is whether its mean is above the margin (worse) or below it (not worse).

The test is the Gaussian-mixture asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha,
Kennedy & Ramdas (2023, "Time-uniform central limit theory and asymptotic confidence sequences",
Theorem 2.2): with `m_t` and `s_t` the mean and standard deviation of the first t differences,

    m_t +- s_t * sqrt(2 (t r^2 + 1) / (t^2 r^2) * log(sqrt(t r^2 + 1) / alpha))

covers the true mean at every t at once with probability 1 - alpha (asymptotically), so the trainer
may look after every pair and stop at the first crossing. Why this one:
- log loss is a mean of per-request terms, so its paired difference is a plain mean and a
  confidence sequence on a mean applies directly (AUC is not a mean of independent terms);
- log loss is unbounded (a confident wrong answer costs up to 34.5 nats at the 1e-15 clip): the
  bounded-observation sequences (empirical Bernstein, betting) would need that range and be
  hopelessly wide; this one needs only a finite variance, which it estimates as it goes;
- it is an interval at every pair, which non-inferiority needs on both sides (reject once its low
  end is above the margin, promote once its high end is below it) and which the record shows; an
  mSPRT (Johari et al. 2017) on the same normal mixture has the same boundary for one point null,
  and its p-value says less to an operator;
- it is a closed form over cumulative sums: a whole tally's sequence in O(n), so a restarted
  trainer finds the same first crossing, and thousands of simulated rollouts fit in a unit test.
The price: its validity is asymptotic (the variance is estimated), so no decision is taken before
`burn_in` pairs; the unit tests measure the type-I error ("promote a worse one") by simulation.

`r` sets where the sequence is tightest; it is tuned for the pair budget (`tightest_at`), the
point at which the fixed rule would decide anyway.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from train.rollout.guardrails import ChallengerHealth, Guardrails, breach
from train.rollout.judgement import (
    PROMOTE,
    REJECT,
    WAIT,
    Decision,
    Interval,
    Judgement,
    PairedFigures,
    Verdict,
    judge,
    paired_figures,
    per_request_log_loss,
)
from utils.settings import JudgementSettings, RolloutJudgement

# The rules that decide (Judgement.rule): the two settings, and the guardrails that override both.
SEQUENTIAL: RolloutJudgement = "sequential"
FIXED: RolloutJudgement = "fixed"
GUARDRAIL = "guardrail"


@dataclass(frozen=True)
class Crossing:
    """The sequential test's decision on a run of paired differences: PROMOTE, REJECT or WAIT, at
    how many pairs (all of them when it waits), and the interval there."""

    decision: Decision
    pairs: int
    interval: Interval

    def to_dict(self) -> dict:
        return asdict(self)


def mixture_rho_squared(alpha: float, tightest_at: int) -> float:
    """The mixture's r^2 that makes the sequence tightest at `tightest_at` pairs (Waudby-Smith et
    al. 2023, section 2.3)."""
    log_term = -2.0 * np.log(alpha)
    return float((log_term + np.log(log_term + 1.0)) / tightest_at)


def confidence_sequence(
    differences: np.ndarray, confidence: float, tightest_at: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Running mean, low and high of the asymptotic confidence sequence after each pair, along the
    last axis (a 2-D array is many rollouts at once)."""
    differences = np.asarray(differences, dtype=float)
    alpha = 1.0 - confidence
    rho2 = mixture_rho_squared(alpha, tightest_at)
    t = np.arange(1, differences.shape[-1] + 1, dtype=float)
    mean = np.cumsum(differences, axis=-1) / t
    # The running variance from cumulative sums of the centred values: the first difference is a
    # fine centre (the differences are small numbers), and it avoids the cancellation of E[x^2] - m^2.
    centre = differences[..., :1]
    centred = differences - centre
    variance = np.maximum(np.cumsum(centred**2, axis=-1) / t - (mean - centre) ** 2, 0.0)
    spread = 2.0 * (t * rho2 + 1.0) / (t**2 * rho2) * np.log(np.sqrt(t * rho2 + 1.0) / alpha)
    radius = np.sqrt(variance * spread)
    return mean, mean - radius, mean + radius


def first_crossings(low: np.ndarray, high: np.ndarray, margin: float, burn_in: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row of running bounds: the index of the first pair (from `burn_in` on) at which the
    interval is wholly above the margin (reject) or wholly below it (promote), or -1, and whether
    that crossing promotes."""
    low, high = np.atleast_2d(low), np.atleast_2d(high)
    settled = (low > margin) | (high < margin)
    settled[:, : max(burn_in - 1, 0)] = False
    crossed = settled.any(axis=1)
    first = np.where(crossed, settled.argmax(axis=1), -1)
    rows = np.arange(len(first))
    promotes = crossed & (high[rows, np.maximum(first, 0)] < margin)
    return first, promotes


def sequential_decision(
    differences: np.ndarray, margin: float, confidence: float, burn_in: int, tightest_at: int
) -> Crossing:
    """PROMOTE at the first pair where the challenger is shown not worse than `margin` (the high end
    of the sequence below it), REJECT at the first where it is shown worse beyond it (the low end
    above it), else WAIT with the interval after every pair."""
    differences = np.asarray(differences, dtype=float)
    if len(differences) == 0:
        return Crossing(WAIT, 0, Interval(0.0, -np.inf, np.inf))
    mean, low, high = confidence_sequence(differences, confidence, tightest_at)
    [first], [promotes] = first_crossings(low, high, margin, burn_in)
    at = int(first) if first >= 0 else len(differences) - 1
    interval = Interval(float(mean[at]), float(low[at]), float(high[at]))
    if first < 0:
        return Crossing(WAIT, len(differences), interval)
    return Crossing(PROMOTE if promotes else REJECT, at + 1, interval)


def log_loss_differences(labels: np.ndarray, champion: np.ndarray, challenger: np.ndarray) -> np.ndarray:
    """Per request: the challenger's log loss minus the champion's (positive: the challenger is worse)."""
    labels = np.asarray(labels, dtype=float)
    return per_request_log_loss(labels, np.asarray(challenger, dtype=float)) - per_request_log_loss(
        labels, np.asarray(champion, dtype=float)
    )


def figures_if_any(
    labels: np.ndarray, champion: np.ndarray, challenger: np.ndarray, confidence: float
) -> PairedFigures | None:
    """Every paired figure, when there are enough pairs of both classes for them."""
    if len(labels) < 2 or labels.min() == labels.max():
        return None
    return paired_figures(labels, champion, challenger, confidence)


def judge_rollout(
    labels: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    health: ChallengerHealth,
    rule: JudgementSettings,
) -> Verdict:
    """The trial's verdict on its tally (pairs in log order): the guardrails first (reject at once);
    then, under the sequential rule, the first pair at which the confidence sequence on the log-loss
    difference settles, within the budget of `rule.min_labelled` pairs; at the budget, DeLong's fixed
    rule on those pairs. Under the fixed rule, DeLong's alone, as it always was."""
    labels = np.asarray(labels, dtype=np.int64)
    champion, challenger = np.asarray(champion, dtype=float), np.asarray(challenger, dtype=float)
    record = health.to_dict()
    breached = breach(health, Guardrails(rule.max_error_rate, rule.max_scoring_us, rule.guardrail_min_requests))
    if breached is not None:
        figures = figures_if_any(labels, champion, challenger, rule.confidence)
        interval = figures.log_loss_difference if figures is not None else None
        return Verdict(REJECT, breached, figures, Judgement(GUARDRAIL, len(labels), interval, None, record))
    if rule.rule == FIXED:
        verdict = judge(labels, champion, challenger, rule.min_labelled, rule.margin, rule.confidence)
        interval = verdict.figures.log_loss_difference if verdict.figures is not None else None
        return Verdict(
            verdict.decision, verdict.reason, verdict.figures, Judgement(FIXED, len(labels), interval, None, record)
        )
    budget = rule.min_labelled
    crossing = sequential_decision(
        log_loss_differences(labels[:budget], champion[:budget], challenger[:budget]),
        rule.log_loss_margin,
        rule.confidence,
        burn_in=min(rule.sequential_burn_in, budget),
        tightest_at=budget,
    )
    judgement = Judgement(SEQUENTIAL, crossing.pairs, crossing.interval, rule.log_loss_margin, record)
    summary = (
        f"log-loss difference {crossing.interval.estimate:+.4f} per request after {crossing.pairs} labelled pairs, "
        f"{rule.confidence:.0%} confidence sequence [{crossing.interval.low:+.4f}, {crossing.interval.high:+.4f}]"
    )
    if crossing.decision != WAIT:
        pairs = crossing.pairs
        figures = figures_if_any(labels[:pairs], champion[:pairs], challenger[:pairs], rule.confidence)
        verdict_text = (
            f"not worse than the margin {rule.log_loss_margin}"
            if crossing.decision == PROMOTE
            else f"worse beyond the margin {rule.log_loss_margin}"
        )
        return Verdict(crossing.decision, f"{summary}: {verdict_text}", figures, judgement)
    if len(labels) < budget:
        return Verdict(WAIT, f"{summary}; at most {budget} pairs", None, judgement)
    # The budget spent without a sequential decision: the fixed rule on those pairs (on all of them
    # if they hold one class only: it waits for the other).
    judged = budget if labels[:budget].min() != labels[:budget].max() else len(labels)
    fixed = judge(labels[:judged], champion[:judged], challenger[:judged], budget, rule.margin, rule.confidence)
    return Verdict(
        fixed.decision,
        f"no sequential decision within {budget} pairs ({summary}); fixed rule: {fixed.reason}",
        fixed.figures,
        Judgement(FIXED, judged, crossing.interval, rule.log_loss_margin, record),
    )
