"""Is a challenger worse than the champion on live traffic? Decided purely from paired scores: the
same labelled requests, what each model said.

The decision uses DeLong's interval on the paired AUC difference (DeLong, DeLong & Clarke-Pearson
1988, in the fast midrank form of Sun & Xu 2014):
- AUC is the figure the holdout gate and the tuning already compare versions on;
- the two models score the very same requests, so their AUCs are strongly correlated: DeLong's
  covariance takes that into account (an unpaired interval would be several times wider);
- it is a closed form: the same tally always gives the same interval, in O(n log n), where a
  bootstrap's interval moves with its seed and costs thousands of resamples.
Log loss and accuracy are reported beside it with a paired normal interval on the mean per-request
difference (both are means of per-request terms, so the central limit theorem applies directly).

The rule is a non-inferiority test: promote when the lower end of the interval on
AUC(challenger) - AUC(champion) is above -margin; otherwise reject.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy.stats import norm, rankdata

from utils.scoring import DECISION_THRESHOLD

EPSILON = 1e-15

Decision = Literal["promote", "reject", "wait"]
PROMOTE: Decision = "promote"
REJECT: Decision = "reject"
WAIT: Decision = "wait"


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class PairedFigures:
    """Both models on the same labelled requests; differences are challenger minus champion."""

    labelled: int
    positives: int
    champion: dict[str, float]
    challenger: dict[str, float]
    auc_difference: Interval
    log_loss_difference: Interval
    accuracy_difference: Interval
    confidence: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Judgement:
    """What a decision took: the rule that took it (`sequential`, `fixed`, `guardrail`), at how many
    pairs, and the log-loss difference's interval there (the confidence sequence's under the
    sequential rule), with the challenger's health at the time."""

    rule: str
    pairs: int
    log_loss_difference: Interval | None = None
    log_loss_margin: float | None = None
    health: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str
    figures: PairedFigures | None = None
    judgement: Judgement | None = None


def delong_paired(labels: np.ndarray, first: np.ndarray, second: np.ndarray) -> tuple[float, float, float]:
    """AUC of `first`, AUC of `second`, and the variance of their difference (DeLong). Needs both
    classes among `labels`."""
    positive = labels == 1
    m, n = int(positive.sum()), int((~positive).sum())
    scores = np.vstack([first, second])
    v10 = np.empty((2, m))
    v01 = np.empty((2, n))
    aucs = np.empty(2)
    for k in range(2):
        x, y = scores[k, positive], scores[k, ~positive]
        tx, ty, tz = rankdata(x), rankdata(y), rankdata(np.concatenate([x, y]))
        aucs[k] = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
        v10[k] = (tz[:m] - tx) / n
        v01[k] = 1.0 - (tz[m:] - ty) / m
    covariance = np.cov(v10) / m + np.cov(v01) / n
    variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    return float(aucs[0]), float(aucs[1]), max(variance, 0.0)


def paired_mean_interval(differences: np.ndarray, z: float) -> Interval:
    """Normal interval of the mean of per-request paired differences."""
    mean = float(differences.mean())
    half = z * float(differences.std(ddof=1)) / np.sqrt(len(differences)) if len(differences) > 1 else 0.0
    return Interval(mean, mean - half, mean + half)


def per_request_log_loss(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    clipped = np.clip(probabilities, EPSILON, 1 - EPSILON)
    return -(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))


def paired_figures(
    labels: np.ndarray, champion: np.ndarray, challenger: np.ndarray, confidence: float
) -> PairedFigures:
    """Every figure of the comparison; both classes must be present."""
    z = float(norm.ppf(0.5 + confidence / 2))
    champion_auc, challenger_auc, variance = delong_paired(labels, champion, challenger)
    half = z * np.sqrt(variance)
    difference = challenger_auc - champion_auc
    champion_loss, challenger_loss = per_request_log_loss(labels, champion), per_request_log_loss(labels, challenger)
    champion_right = ((champion >= DECISION_THRESHOLD) == labels).astype(float)
    challenger_right = ((challenger >= DECISION_THRESHOLD) == labels).astype(float)
    return PairedFigures(
        labelled=len(labels),
        positives=int(labels.sum()),
        champion={"auc": champion_auc, "log_loss": float(champion_loss.mean()), "accuracy": champion_right.mean()},
        challenger={
            "auc": challenger_auc,
            "log_loss": float(challenger_loss.mean()),
            "accuracy": challenger_right.mean(),
        },
        auc_difference=Interval(difference, difference - half, difference + half),
        log_loss_difference=paired_mean_interval(challenger_loss - champion_loss, z),
        accuracy_difference=paired_mean_interval(challenger_right - champion_right, z),
        confidence=confidence,
    )


def judge(
    labels: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    min_labelled: int,
    margin: float,
    confidence: float = 0.95,
) -> Verdict:
    """WAIT until `min_labelled` paired requests (of both classes) are in; then PROMOTE if the
    challenger's AUC is not lower than the champion's by more than `margin` at `confidence`, else
    REJECT."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) < min_labelled:
        return Verdict(WAIT, f"{len(labels)} of {min_labelled} labelled requests")
    if labels.min() == labels.max():
        return Verdict(WAIT, f"all {len(labels)} labelled requests have the same label")
    figures = paired_figures(labels, np.asarray(champion, dtype=float), np.asarray(challenger, dtype=float), confidence)
    difference = figures.auc_difference
    summary = (
        f"live AUC {figures.challenger['auc']:.4f} vs champion {figures.champion['auc']:.4f} on {len(labels)} "
        f"labelled requests; difference {difference.estimate:+.4f}, {confidence:.0%} interval "
        f"[{difference.low:+.4f}, {difference.high:+.4f}]"
    )
    if difference.low >= -margin:
        return Verdict(PROMOTE, f"{summary}: not worse than the margin {margin}", figures)
    return Verdict(REJECT, f"{summary}: may be worse by more than the margin {margin}", figures)
