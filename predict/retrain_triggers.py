"""When a predictor asks for a retrain besides the count of observations (`predict/batch.py`
`retrain_ends`): drift of its requests or of the model's scores, a drop of its live quality, or time
with enough new observations. Decided without I/O: the loop feeds what the serving model scored, a
thread of the predictor asks `RetrainTriggers.due` now and then (a drift judgement takes ~20 ms,
too long for the serving loop), and the loop sends what it returns (docs/rollouts.md).

Every judgement is about the serving version: its reference rows (holdout rows stored with it, the
data it learnt on) and its holdout log loss. A new serving version empties the windows; the
cooldowns stay, so that one cause does not retrain in a loop.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from utils import drift
from utils.messages.events import DRIFT, QUALITY, TIME, RetrainReason
from utils.settings import PredictorSettings
from utils.spec import DatasetSpec

EPSILON = 1e-15  # probabilities are clipped so that a confident mistake costs a finite log loss
CONFIDENCE = 0.95  # of the quality trigger's one-sided interval
CHECKS_PER_WINDOW = 10  # the drift and quality judgements run every window / 10 requests


@dataclass(frozen=True)
class TriggerSettings:
    """The predictor's trigger settings (utils/settings.py); 0 turns a trigger off."""

    drift_psi: float = 0.0
    quality_margin: float = 0.0
    interval_s: float = 0.0
    min_new: int = 0
    window: int = 1000
    cooldown_s: float = 600.0

    @classmethod
    def of(cls, settings: PredictorSettings) -> TriggerSettings:
        return cls(
            settings.retrain_on_drift,
            settings.retrain_on_quality_drop,
            settings.retrain_interval_s,
            settings.retrain_min_new,
            settings.retrain_window,
            settings.retrain_cooldown_s,
        )

    @property
    def any_on(self) -> bool:
        return self.drift_psi > 0 or self.quality_margin > 0 or self.interval_s > 0

    @property
    def stride(self) -> int:
        """Requests between two judgements of a window: a shift is seen within window + stride."""
        return max(1, self.window // CHECKS_PER_WINDOW)


@dataclass(frozen=True)
class Trigger:
    reason: RetrainReason
    evidence: dict[str, Any]


@dataclass(frozen=True)
class ServingVersion:
    """What the triggers judge the serving version against: its reference rows and their scores
    (`reference.json`), its holdout log loss and the observations it was trained on (metadata)."""

    version: int
    spec: DatasetSpec
    reference_rows: pd.DataFrame
    reference_scores: np.ndarray
    holdout_log_loss: float | None = None
    holdout_auc: float | None = None  # recorded beside a quality trigger's evidence, not judged on
    observations_end_offset: int = 0


# --- The pure judgements: figures in, a trigger or None out. ---


def drift_trigger(
    feature_psi: Mapping[str, float], score_psi: float | None, requests: int, settings: TriggerSettings
) -> Trigger | None:
    """Drift when the PSI of any field, or of the scores, over a full window is above the threshold."""
    if settings.drift_psi <= 0 or requests < settings.window:
        return None
    figures = dict(feature_psi)
    if score_psi is not None:
        figures["score"] = score_psi
    if not figures:
        return None
    worst = max(figures, key=lambda name: figures[name])
    if figures[worst] <= settings.drift_psi:
        return None
    return Trigger(
        DRIFT,
        {
            "feature": worst,
            "psi": round(figures[worst], 4),
            "threshold": settings.drift_psi,
            "window": requests,
            "drifted": ",".join(drift.drifted(figures, settings.drift_psi)),
            "score_psi": round(score_psi, 4) if score_psi is not None else None,
        },
    )


def log_losses(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The log loss of each request."""
    p = np.clip(np.asarray(probabilities, dtype=float), EPSILON, 1 - EPSILON)
    y = np.asarray(labels, dtype=float)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def quality_trigger(losses: np.ndarray, holdout_log_loss: float | None, settings: TriggerSettings) -> Trigger | None:
    """Quality when, over a full window of labelled requests, the one-sided 95% lower bound of the
    mean log loss per request is above the holdout log loss plus the margin: live is worse by more
    than the margin, with confidence (a mean of bounded-variance losses: the normal interval holds
    at window sizes of hundreds)."""
    if settings.quality_margin <= 0 or holdout_log_loss is None or len(losses) < settings.window:
        return None
    mean = float(np.mean(losses))
    lower = mean - norm.ppf(CONFIDENCE) * float(np.std(losses, ddof=1)) / math.sqrt(len(losses))
    if lower <= holdout_log_loss + settings.quality_margin:
        return None
    return Trigger(
        QUALITY,
        {
            "live_log_loss": round(mean, 4),
            "lower_bound": round(lower, 4),
            "holdout_log_loss": round(holdout_log_loss, 4),
            "margin": settings.quality_margin,
            "window": len(losses),
        },
    )


def with_auc(trigger: Trigger, scores: np.ndarray, labels: np.ndarray, holdout_auc: float | None) -> Trigger:
    """A quality trigger's evidence with the live AUC of its window beside the holdout's: a figure
    people look for, though the decision is the log loss's (its interval is the simpler one)."""
    if len(np.unique(labels)) < 2:
        return trigger
    figures = {"live_auc": round(float(roc_auc_score(labels, scores)), 4)}
    if holdout_auc is not None:
        figures["holdout_auc"] = round(holdout_auc, 4)
    return Trigger(trigger.reason, {**trigger.evidence, **figures})


def time_trigger(elapsed_s: float, new_observations: int, settings: TriggerSettings) -> Trigger | None:
    """Time when the interval has passed since the last time trigger and enough observations arrived."""
    if settings.interval_s <= 0 or elapsed_s < settings.interval_s or new_observations < settings.min_new:
        return None
    return Trigger(
        TIME,
        {"elapsed_s": round(elapsed_s, 1), "interval_s": settings.interval_s, "new_observations": new_observations},
    )


def cooled_down(reason: RetrainReason, now: float, last_fired: Mapping[str, float], cooldown_s: float) -> bool:
    """Whether `reason` may fire again: never fired, or not within the cooldown."""
    return reason not in last_fired or now - last_fired[reason] >= cooldown_s


def window_drift(
    serving: ServingVersion, records: Sequence[Mapping[str, Any]], scores: np.ndarray
) -> tuple[dict[str, float], float | None]:
    """PSI of every field and of the scores of these requests against the version's reference."""
    if not records or serving.reference_rows.empty:
        return {}, None
    window = pd.DataFrame.from_records(list(records), columns=list(serving.spec.field_names))
    features = drift.feature_drift(serving.spec, serving.reference_rows, window)
    shift = drift.prediction_shift(serving.reference_scores, scores)
    return features, shift.get("probability_psi")


# --- The state between judgements (no I/O either: the loop feeds it and sends what it says). ---


@dataclass
class RetrainTriggers:
    """The last `window` requests the serving version scored (and its labelled ones), the time
    each reason last fired, and the judgement of them all (`due`)."""

    settings: TriggerSettings
    serving: ServingVersion
    started_at: float  # monotonic seconds; the time trigger's first interval starts here
    records: deque[Mapping[str, Any]] = field(init=False)
    scores: deque[float] = field(init=False)
    losses: deque[float] = field(init=False)
    labelled_scores: deque[float] = field(init=False)  # of the same labelled requests as `losses`
    labels: deque[int] = field(init=False)
    last_fired: dict[str, float] = field(default_factory=dict)
    added_since_check: int = 0
    # The serving loop adds, another thread judges: the windows change only under the lock, and
    # are judged on a copy (so the loop never waits for a judgement). `due` has one caller.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._empty_windows()

    def _empty_windows(self) -> None:
        self.records = deque(maxlen=self.settings.window)
        self.scores = deque(maxlen=self.settings.window)
        self.losses = deque(maxlen=self.settings.window)
        self.labelled_scores = deque(maxlen=self.settings.window)
        self.labels = deque(maxlen=self.settings.window)
        self.added_since_check = 0

    def serve(self, serving: ServingVersion) -> None:
        """A new serving version: what was seen so far was about the previous one."""
        with self._lock:
            self.serving = serving
            self._empty_windows()

    def add(
        self, version: int, records: Sequence[Mapping[str, Any]], scores: np.ndarray, labels: Sequence[int | None]
    ) -> None:
        """What the serving version scored in a batch (another version's scores are not its evidence)."""
        labelled = [index for index, label in enumerate(labels) if label is not None]
        truth = np.array([labels[index] for index in labelled], dtype=float)
        said = np.asarray(scores, dtype=float)[labelled]
        losses = log_losses(said, truth).tolist()
        with self._lock:
            if version != self.serving.version:
                return
            self.records.extend(records)
            self.scores.extend(np.asarray(scores, dtype=float).tolist())
            self.losses.extend(losses)
            self.labelled_scores.extend(said.tolist())
            self.labels.extend(int(label) for label in truth)
            self.added_since_check += len(records)

    def due(self, now: float, observations_end: int) -> Trigger | None:
        """The trigger that fires now, if any (drift, then quality, then time), recorded for its
        cooldown; its evidence names the serving version it judged. `observations_end` is the end
        of the observations log as this predictor knows it."""
        settings = self.settings
        with self._lock:
            serving, judging = self.serving, self.added_since_check >= settings.stride
            if judging:
                self.added_since_check = 0
                records, scores = list(self.records), np.fromiter(self.scores, float)
                losses = np.fromiter(self.losses, float)
                said, truth = np.fromiter(self.labelled_scores, float), np.fromiter(self.labels, int)
        found: list[Trigger | None] = []
        if judging:
            if settings.drift_psi > 0 and cooled_down(DRIFT, now, self.last_fired, settings.cooldown_s):
                features, score_psi = window_drift(serving, records, scores)
                found.append(drift_trigger(features, score_psi, len(records), settings))
            if settings.quality_margin > 0 and cooled_down(QUALITY, now, self.last_fired, settings.cooldown_s):
                quality = quality_trigger(losses, serving.holdout_log_loss, settings)
                found.append(with_auc(quality, said, truth, serving.holdout_auc) if quality else None)
        since = self.last_fired.get(TIME, self.started_at)
        new = max(0, observations_end - serving.observations_end_offset)
        found.append(time_trigger(now - since, new, settings))
        trigger = next((t for t in found if t is not None), None)
        if trigger is None:
            return None
        self.last_fired[trigger.reason] = now
        return Trigger(trigger.reason, {**trigger.evidence, "serving_version": serving.version})
