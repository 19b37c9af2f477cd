"""The live judgement of a challenger: DeLong's paired interval and the decision it leads to."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from train.rollout.judgement import PROMOTE, REJECT, WAIT, delong_paired, judge, paired_figures


def paired_scores(n, seed=0, challenger_noise=0.0, shift=0.0):
    """Labels, a champion that ranks them well, and a challenger: the champion plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    champion = 1 / (1 + np.exp(-(2.5 * (labels - 0.5) + rng.normal(0, 1, n))))
    challenger = np.clip(champion + shift * (labels - 0.5) + rng.normal(0, challenger_noise, n), 0.001, 0.999)
    return labels, champion, challenger


def test_delong_aucs_are_sklearns_and_its_variance_matches_a_paired_bootstrap():
    labels, champion, challenger = paired_scores(600, challenger_noise=0.15)
    first, second, variance = delong_paired(labels, champion, challenger)
    assert first == pytest.approx(roc_auc_score(labels, champion), abs=1e-12)
    assert second == pytest.approx(roc_auc_score(labels, challenger), abs=1e-12)
    rng = np.random.default_rng(1)
    differences = []
    for _ in range(1000):
        index = rng.integers(0, len(labels), len(labels))
        differences.append(
            roc_auc_score(labels[index], challenger[index]) - roc_auc_score(labels[index], champion[index])
        )
    assert np.sqrt(variance) == pytest.approx(np.std(differences), rel=0.2)


def test_ties_count_half_as_in_the_auc():
    labels = np.array([0, 0, 1, 1, 1, 0])
    scores = np.array([0.2, 0.5, 0.5, 0.9, 0.5, 0.1])
    first, second, variance = delong_paired(labels, scores, scores)
    assert first == second == pytest.approx(roc_auc_score(labels, scores))
    assert variance == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize(
    "n, noise, shift, min_labelled, decision",
    [
        (499, 0.0, 0.0, 500, WAIT),
        (500, 0.0, 0.0, 500, PROMOTE),  # the same model: interval [0, 0]
        (800, 0.02, 0.0, 500, PROMOTE),  # equal up to noise
        (800, 0.0, 0.2, 500, PROMOTE),  # better
        (800, 0.35, 0.0, 500, REJECT),  # much noisier: worse
        (800, 0.0, -0.6, 500, REJECT),  # separates the classes less
    ],
)
def test_decisions(n, noise, shift, min_labelled, decision):
    labels, champion, challenger = paired_scores(n, challenger_noise=noise, shift=shift)
    verdict = judge(labels, champion, challenger, min_labelled, margin=0.005)
    assert verdict.decision == decision
    if decision != WAIT:
        assert verdict.figures is not None
        interval = verdict.figures.auc_difference
        assert interval.low <= interval.estimate <= interval.high
        assert bool(interval.low >= -0.005) is (decision == PROMOTE)


def test_one_class_only_waits_for_the_other():
    verdict = judge(np.ones(600), np.full(600, 0.7), np.full(600, 0.6), 500, 0.005)
    assert verdict.decision == WAIT and "same label" in verdict.reason


def test_the_figures_report_every_metric_for_both_models():
    labels, champion, challenger = paired_scores(700, challenger_noise=0.1)
    figures = paired_figures(labels, champion, challenger, confidence=0.95)
    assert figures.labelled == 700 and figures.positives == int(labels.sum())
    for side in (figures.champion, figures.challenger):
        assert set(side) == {"auc", "log_loss", "accuracy"}
    expected_loss = -np.mean(labels * np.log(champion) + (1 - labels) * np.log(1 - champion))
    assert figures.champion["log_loss"] == pytest.approx(expected_loss)
    difference = figures.log_loss_difference
    assert difference.estimate == pytest.approx(figures.challenger["log_loss"] - figures.champion["log_loss"])
    assert difference.low < difference.estimate < difference.high
