"""Holdout metrics of a model version, the figures every version is compared on."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from utils.scoring import DECISION_THRESHOLD


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float = DECISION_THRESHOLD
) -> dict[str, float]:
    predictions = (probabilities >= threshold).astype(np.int64)
    return {
        "auc": float(roc_auc_score(labels, probabilities)),
        "accuracy": float(accuracy_score(labels, predictions)),
        "f1": float(f1_score(labels, predictions)),
        "log_loss": float(log_loss(labels, probabilities, labels=[0, 1])),
    }


def prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}_{name}": value for name, value in metrics.items()}
