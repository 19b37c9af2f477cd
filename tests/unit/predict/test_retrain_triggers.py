"""The retrain triggers: table-driven judgements, then streams of real Adult rows through the state."""

import threading
import time
from types import SimpleNamespace
from typing import cast

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from predict.hot_swap import ModelSwapper
from predict.loop import TriggerJudge, serving_version_of
from predict.retrain_triggers import (
    RetrainTriggers,
    ServingVersion,
    Trigger,
    TriggerSettings,
    cooled_down,
    drift_trigger,
    log_losses,
    quality_trigger,
    time_trigger,
)
from train.pipeline import fixed_rounds_files
from utils.data import TARGET, frame_to_records, labels_of
from utils.model_store import ModelStore, VersionMetadata
from utils.scoring import load_scorer, scorer_from_files

WINDOW = 1000
DRIFT_ON = TriggerSettings(drift_psi=0.2, window=WINDOW, cooldown_s=60)
QUALITY_ON = TriggerSettings(quality_margin=0.05, window=WINDOW, cooldown_s=60)


@pytest.mark.parametrize(
    "feature_psi, score_psi, requests, settings, expected",
    [
        ({"age": 0.3}, 0.01, 1000, DRIFT_ON, ("drift", "age")),
        ({"age": 0.05, "education": 0.1}, 0.25, 1000, DRIFT_ON, ("drift", "score")),
        ({"age": 0.19}, 0.19, 1000, DRIFT_ON, None),  # below the threshold
        ({"age": 0.3}, 0.01, 999, DRIFT_ON, None),  # the window is not full yet
        ({"age": 0.3}, None, 1000, TriggerSettings(drift_psi=0.0, window=1000), None),  # off
        ({}, None, 1000, DRIFT_ON, None),  # nothing measured
    ],
)
def test_drift_trigger(feature_psi, score_psi, requests, settings, expected):
    trigger = drift_trigger(feature_psi, score_psi, requests, settings)
    assert (None if trigger is None else (trigger.reason, trigger.evidence["feature"])) == expected
    if trigger is not None:
        assert trigger.evidence["window"] == requests and trigger.evidence["psi"] > settings.drift_psi


@pytest.mark.parametrize(
    "mean_loss, spread, count, holdout, settings, fires",
    [
        (0.50, 0.3, 1000, 0.30, QUALITY_ON, True),  # worse by 0.2, far beyond the margin
        (0.36, 0.3, 1000, 0.30, QUALITY_ON, False),  # worse by 0.06, but the interval reaches the margin
        (0.30, 0.3, 1000, 0.30, QUALITY_ON, False),  # as on the holdout
        (0.50, 0.3, 999, 0.30, QUALITY_ON, False),  # the window is not full yet
        (0.50, 0.3, 1000, None, QUALITY_ON, False),  # no holdout figure to compare with
        (0.50, 0.3, 1000, 0.30, TriggerSettings(quality_margin=0.0, window=1000), False),  # off
    ],
)
def test_quality_trigger(mean_loss, spread, count, holdout, settings, fires):
    losses = mean_loss + spread * np.random.default_rng(0).standard_normal(count)
    losses += mean_loss - losses.mean()  # exactly this mean
    trigger = quality_trigger(losses, holdout, settings)
    assert (trigger is not None) == fires
    if trigger is not None:
        assert trigger.reason == "quality"
        assert trigger.evidence["lower_bound"] > holdout + settings.quality_margin


@pytest.mark.parametrize(
    "elapsed_s, new, settings, fires",
    [
        (61, 100, TriggerSettings(interval_s=60, min_new=100), True),
        (59, 100, TriggerSettings(interval_s=60, min_new=100), False),
        (61, 99, TriggerSettings(interval_s=60, min_new=100), False),
        (1e9, 10**6, TriggerSettings(interval_s=0, min_new=0), False),  # off
    ],
)
def test_time_trigger(elapsed_s, new, settings, fires):
    trigger = time_trigger(elapsed_s, new, settings)
    assert (trigger is not None) == fires
    assert trigger is None or trigger.evidence["new_observations"] == new


@pytest.mark.parametrize(
    "last_fired, now, cooled",
    [({}, 5.0, True), ({"drift": 0.0}, 59.0, False), ({"drift": 0.0}, 60.0, True), ({"quality": 0.0}, 1.0, True)],
)
def test_each_reason_has_its_own_cooldown(last_fired, now, cooled):
    assert cooled_down("drift", now, last_fired, 60.0) == cooled


def test_log_losses_are_per_request_and_finite():
    losses = log_losses(np.array([0.9, 0.1, 0.0, 1.0]), np.array([1, 1, 1, 1]))
    assert losses[0] == pytest.approx(-np.log(0.9)) and losses[1] == pytest.approx(-np.log(0.1))
    assert np.isfinite(losses).all() and losses[2] > 30 and losses[3] == pytest.approx(0.0, abs=1e-12)


# --- Streams of Adult rows through the state the predictor keeps. ---


@pytest.fixture(scope="module")
def served(adult):
    """A real version (40 trees on 8,000 rows, 2,000 reference rows), the stream's rows with its
    scores, and what the triggers judge it against."""
    files = fixed_rounds_files(adult.spec, adult.training.head(8000), adult.holdout, 40, reference_rows=2000)
    scorer = scorer_from_files(1, files)
    assert scorer.reference is not None
    holdout_scores = scorer.predict_proba(frame_to_records(adult.holdout, adult.spec))
    holdout_log_loss = float(np.mean(log_losses(holdout_scores, labels_of(adult.holdout))))
    serving = ServingVersion(
        1,
        adult.spec,
        pd.DataFrame.from_records(list(scorer.reference.records)),
        scorer.reference.scores,
        holdout_log_loss,
        float(roc_auc_score(labels_of(adult.holdout), holdout_scores)),
    )
    return scorer, serving


def stream(triggers, scorer, rows: pd.DataFrame, spec, batch: int = 50, start: int = 0) -> list[tuple[int, Trigger]]:
    """Feed `rows` in batches as the loop does; each trigger with the request count it fired at."""
    fired = []
    records = frame_to_records(rows, spec)
    scores = scorer.predict_proba(records)
    labels = [int(label) for label in labels_of(rows)]
    for at in range(0, len(rows), batch):
        end = min(at + batch, len(rows))
        triggers.add(1, records[at:end], scores[at:end], labels[at:end])
        trigger = triggers.due(now=float(start + end), observations_end=0)
        if trigger is not None:
            fired.append((start + end, trigger))
    return fired


def bootstrap(frame: pd.DataFrame, count: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=count, replace=True, random_state=seed).reset_index(drop=True)


def test_an_unshifted_stream_of_20_windows_triggers_no_drift_and_no_quality_drop(adult, served):
    scorer, serving = served
    settings = TriggerSettings(drift_psi=0.2, quality_margin=0.05, window=WINDOW, cooldown_s=0)
    triggers = RetrainTriggers(settings, serving, 0.0)
    assert stream(triggers, scorer, bootstrap(adult.stream, 20 * WINDOW, seed=1), adult.spec) == []


def age_plus_ten(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(age=frame["age"] + 10)


def executives_only(frame: pd.DataFrame) -> pd.DataFrame:
    """One sub-population: the same people as before, but only the executives and managers come."""
    return frame[frame["occupation"] == "Exec-managerial"]


@pytest.mark.parametrize("shift", [age_plus_ten, executives_only])
def test_a_shifted_stream_triggers_drift_within_a_window(adult, served, shift):
    scorer, serving = served
    settings = TriggerSettings(drift_psi=0.2, window=WINDOW, cooldown_s=1e9)
    triggers = RetrainTriggers(settings, serving, 0.0)
    before, after = bootstrap(adult.stream, 2 * WINDOW, seed=2), bootstrap(shift(adult.stream), 3 * WINDOW, seed=3)
    assert stream(triggers, scorer, before, adult.spec) == []
    fired = stream(triggers, scorer, after, adult.spec, start=len(before))
    assert [trigger.reason for _, trigger in fired] == ["drift"]  # once: the cooldown holds the rest back
    at, trigger = fired[0]
    assert at - len(before) <= WINDOW
    assert trigger.evidence["psi"] > 0.2 and trigger.evidence["window"] == WINDOW


def test_labels_flipped_on_part_of_the_traffic_trigger_quality(adult, served):
    scorer, serving = served
    settings = TriggerSettings(quality_margin=0.05, window=WINDOW, cooldown_s=1e9)
    triggers = RetrainTriggers(settings, serving, 0.0)
    before = bootstrap(adult.stream, 2 * WINDOW, seed=4)
    assert stream(triggers, scorer, before, adult.spec) == []
    flipped = bootstrap(adult.stream, 3 * WINDOW, seed=5)
    part = np.random.default_rng(6).random(len(flipped)) < 0.3
    flipped.loc[part, TARGET] = 1 - flipped.loc[part, TARGET]
    fired = stream(triggers, scorer, flipped, adult.spec, start=len(before))
    assert [trigger.reason for _, trigger in fired] == ["quality"]
    at, trigger = fired[0]
    assert at - len(before) <= WINDOW
    assert trigger.evidence["lower_bound"] > serving.holdout_log_loss + 0.05
    assert trigger.evidence["live_auc"] < trigger.evidence["holdout_auc"], "the AUC figures are recorded beside"


def test_a_new_serving_version_empties_the_windows_but_keeps_the_cooldowns(adult, served):
    scorer, serving = served
    triggers = RetrainTriggers(TriggerSettings(drift_psi=0.2, window=WINDOW, cooldown_s=1e9), serving, 0.0)
    shifted = bootstrap(age_plus_ten(adult.stream), 2 * WINDOW, seed=7)
    assert [t.reason for _, t in stream(triggers, scorer, shifted, adult.spec)] == ["drift"]
    triggers.serve(serving)
    assert len(triggers.records) == 0
    assert stream(triggers, scorer, shifted, adult.spec) == []  # still shifted, but cooling down


def test_the_time_trigger_counts_new_observations_since_the_serving_version(served):
    _, serving = served
    triggers = RetrainTriggers(TriggerSettings(interval_s=60, min_new=100), serving, started_at=0.0)
    assert triggers.due(now=59.0, observations_end=500) is None
    assert triggers.due(now=61.0, observations_end=50) is None  # too few new observations
    fired = triggers.due(now=62.0, observations_end=150)
    assert fired is not None and fired.reason == "time" and fired.evidence["new_observations"] == 150
    assert triggers.due(now=100.0, observations_end=400) is None  # the next interval starts at 62
    assert triggers.due(now=123.0, observations_end=400) is not None


def test_another_versions_scores_are_not_evidence(adult, served):
    scorer, serving = served
    triggers = RetrainTriggers(DRIFT_ON, serving, 0.0)
    triggers.add(2, [{}], np.array([0.5]), [1])
    assert len(triggers.records) == 0 and len(triggers.losses) == 0


# --- The predictor's judging thread, asked once by hand (no thread started, no broker). ---


def test_the_judge_follows_the_serving_version_and_hands_over_what_fired(tmp_path, small_model_files):
    store = ModelStore(tmp_path / "models")
    for trained_to in (0, 400):
        store.publish(
            small_model_files, VersionMetadata(metrics={"holdout_log_loss": 0.3}, observations_end_offset=trained_to)
        )
    swapper = SimpleNamespace(current=load_scorer(store, 1), store=store)
    settings = TriggerSettings(interval_s=60, min_new=100)
    judge = TriggerJudge(
        RetrainTriggers(settings, serving_version_of(store, swapper.current), started_at=time.monotonic() - 61),
        cast(ModelSwapper, swapper),
        threading.Event(),
    )
    assert judge.triggers.serving.holdout_log_loss == 0.3 and judge.triggers.serving.holdout_auc is None
    judge.observations_end = 450
    judge.judge_once()
    [fired] = judge.fired()
    assert (fired.reason, fired.evidence["new_observations"], fired.evidence["serving_version"]) == ("time", 450, 1)
    assert judge.fired() == []

    swapper.current = load_scorer(store, 2)  # a new version serves: trained on the first 400 observations
    judge.triggers.last_fired.clear()
    judge.judge_once()
    assert judge.triggers.serving.version == 2 and judge.triggers.serving.observations_end_offset == 400
    assert judge.fired() == [], "50 new observations since version 2's training: too few"
