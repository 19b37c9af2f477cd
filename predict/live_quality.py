"""How each model version does on live traffic: rolling accuracy, log loss and AUC over its last K
labelled requests, and its rate of positive predictions over its last K predictions."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
from sklearn.metrics import roc_auc_score

from utils.scoring import DECISION_THRESHOLD

EPSILON = 1e-15


class LiveQuality:
    def __init__(self, window: int = 1000):
        self.labels: deque[int] = deque(maxlen=window)
        self.probabilities: deque[float] = deque(maxlen=window)
        self.predictions: deque[int] = deque(maxlen=window)
        self.served = 0
        self.labelled = 0
        self._lock = threading.Lock()  # the serving loop adds, a reporter thread reads

    def add(self, probabilities: np.ndarray, labels: list[int | None]) -> None:
        """One batch of answers; `labels[i]` is None when the request carried no label."""
        with self._lock:
            self._add(probabilities, labels)

    def _add(self, probabilities: np.ndarray, labels: list[int | None]) -> None:
        self.served += len(probabilities)
        self.predictions.extend(int(p >= DECISION_THRESHOLD) for p in probabilities)
        for probability, label in zip(probabilities, labels, strict=True):
            if label is not None:
                self.labels.append(label)
                self.probabilities.append(float(probability))
                self.labelled += 1

    def snapshot(self) -> dict[str, float]:
        """Metrics over the current windows; quality metrics only once there are labels."""
        with self._lock:
            metrics = {"served": float(self.served), "labelled": float(self.labelled)}
            predictions = list(self.predictions)
            labels = np.fromiter(self.labels, dtype=np.int64)
            probabilities = np.fromiter(self.probabilities, dtype=np.float64)
        if predictions:
            metrics["positive_rate"] = float(np.mean(predictions))
        if len(labels):
            probabilities = np.clip(probabilities, EPSILON, 1 - EPSILON)
            metrics["accuracy"] = float(np.mean((probabilities >= DECISION_THRESHOLD) == labels))
            metrics["log_loss"] = float(
                -np.mean(labels * np.log(probabilities) + (1 - labels) * np.log(1 - probabilities))
            )
            if 0 < labels.sum() < len(labels):
                metrics["auc"] = float(roc_auc_score(labels, probabilities))
        return metrics
