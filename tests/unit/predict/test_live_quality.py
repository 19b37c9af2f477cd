"""Live quality per version: rolling windows of labelled requests and of predictions."""

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from predict.live_quality import LiveQuality


@pytest.mark.parametrize(
    "batches, expected",
    [
        ([], {"served": 0.0, "labelled": 0.0}),
        ([([0.9, 0.2], [None, None])], {"served": 2.0, "labelled": 0.0, "positive_rate": 0.5}),
        ([([0.9, 0.2], [1, 0])], {"served": 2.0, "labelled": 2.0, "positive_rate": 0.5, "accuracy": 1.0}),
        ([([0.9, 0.8], [0, 0])], {"served": 2.0, "labelled": 2.0, "positive_rate": 1.0, "accuracy": 0.0}),
    ],
)
def test_snapshot(batches, expected):
    quality = LiveQuality(window=10)
    for probabilities, labels in batches:
        quality.add(np.array(probabilities), labels)
    snapshot = quality.snapshot()
    for name, value in expected.items():
        assert snapshot[name] == pytest.approx(value)
    assert ("accuracy" in snapshot) is ("accuracy" in expected)


def test_auc_needs_both_classes_and_matches_sklearn():
    quality = LiveQuality(window=100)
    quality.add(np.array([0.9, 0.8]), [1, 1])
    assert "auc" not in quality.snapshot()
    quality.add(np.array([0.3, 0.85, 0.1]), [0, 0, None])
    labels, probabilities = [1, 1, 0, 0], [0.9, 0.8, 0.3, 0.85]
    snapshot = quality.snapshot()
    assert snapshot["auc"] == pytest.approx(roc_auc_score(labels, probabilities))
    assert snapshot["log_loss"] == pytest.approx(log_loss(labels, probabilities))


def test_the_windows_keep_only_the_last_requests_but_the_counts_go_on():
    quality = LiveQuality(window=3)
    quality.add(np.array([0.9] * 5), [0] * 5)  # five wrong
    quality.add(np.array([0.1] * 3), [0] * 3)  # three right: the window holds these only
    snapshot = quality.snapshot()
    assert snapshot["accuracy"] == 1.0 and snapshot["positive_rate"] == 0.0
    assert (snapshot["served"], snapshot["labelled"]) == (8.0, 8.0)


def test_certain_answers_do_not_make_the_log_loss_infinite():
    quality = LiveQuality()
    quality.add(np.array([1.0, 0.0]), [0, 1])
    assert np.isfinite(quality.snapshot()["log_loss"])
