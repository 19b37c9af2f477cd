"""Train one model version end to end: fit the preprocessor, tune, fit, evaluate on the holdout,
publish to the model store and record it all in MLflow. Used by initialize.py and the trainer."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from train.evaluate import classification_metrics, prefixed
from train.mlflow_runs import Tracker, TrainingInput
from train.tune import TrainingMatrix, fit_final, make_dataset, tune
from utils.data import frame_columns, frame_to_records, labels_of
from utils.features import Preprocessor
from utils.model_store import MODEL_FILE, PREPROCESSOR_FILE, REFERENCE_FILE, ModelStore, RetrainCause, VersionMetadata
from utils.scoring import Reference
from utils.settings import TuningSettings
from utils.spec import SPEC_FILE, DatasetSpec, to_toml

log = logging.getLogger(__name__)

REFERENCE_ROWS = 2000  # holdout rows a compiled form must reproduce before it serves


@dataclass(frozen=True)
class TrainedVersion:
    version: int
    params: dict[str, Any]
    metrics: dict[str, float]
    trained_rows: int
    mlflow_run_id: str
    promoted: bool
    promotion_reason: str
    timings: dict[str, float]  # seconds per phase (TIMED_PHASES and the caller's own)


# Where a retrain's time goes, in the version's metadata ("timings") and as MLflow metrics seconds_*.
TIMED_PHASES = ("preprocess", "tuning", "final_fit", "evaluate", "publish", "mlflow")


@contextmanager
def timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    """Add the block's wall time to `timings[phase]`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - started


def seconds_metrics(timings: Mapping[str, float]) -> dict[str, float]:
    """The phases finished before publishing, as MLflow metrics (MLflow's own time is still running)."""
    return {f"seconds_{phase}": seconds for phase, seconds in timings.items() if phase != "mlflow"}


def train_version(
    spec: DatasetSpec,
    training: pd.DataFrame,
    holdout: pd.DataFrame,
    tuning: TuningSettings,
    store: ModelStore,
    tracker: Tracker,
    trigger: str,
    lineage: VersionMetadata | None = None,
    extra_evaluations: Mapping[str, pd.DataFrame] | None = None,
    warm_start: Mapping[str, Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
    promotion_gate: Callable[[Mapping[str, float]], tuple[bool, str]] | None = None,
    extra_metrics: Mapping[str, float] | None = None,
    inputs: Sequence[TrainingInput] = (),
    spark: Any = None,
    timings: Mapping[str, float] | None = None,
) -> TrainedVersion:
    """`training` and `holdout` are frames of `spec`'s data (utils/data.py: the fields and TARGET);
    the version carries `spec` (`spec.toml`) and reference rows of `holdout` with their scores.

    `lineage` holds what the caller knows of the version (the rollout it is trained under, the
    observations it read, the version it replaces); the rest of its metadata is filled in here.
    `promotion_gate(metrics)` decides whether the version may serve; the decision is written into
    the version's metadata before it is published, so a trainer killed right after publishing can
    finish the job from the store alone. With a Spark session (`spark`) the trials run on its
    executors. `timings` are the caller's own phases (seconds), recorded with ours."""
    started = time.perf_counter()
    timings = dict(timings or {})
    with timed(timings, "preprocess"):
        preprocessor = Preprocessor.fit(spec, frame_columns(training, spec))
        data = TrainingMatrix.of(
            preprocessor.transform(frame_columns(training, spec)), labels_of(training), preprocessor.layout
        )
    lineage = lineage or VersionMetadata()
    tags: dict[str, Any] = {
        "trigger": trigger,
        "trained_rows": len(training),
        "library": tuning.hyper,
        "rollout": asdict(lineage.rollout),
        "observations_end_offset": lineage.observations_end_offset,
        "new_rows": lineage.new_rows,
        "spec": spec.name,
    }
    if lineage.replaces_version is not None:
        tags |= {"replaces_version": lineage.replaces_version, "replaces_mlflow_run_id": lineage.replaces_mlflow_run_id}
    if tuning.spark.master is not None:
        tags["spark_master"] = tuning.spark.master
    if lineage.schemas is not None:
        tags |= lineage.schemas.tags()
    if lineage.retrain_causes:
        tags |= retrain_cause_tags(lineage.retrain_causes)
    mlflow_started = time.perf_counter()
    with tracker.session(run_name=f"{trigger}-{time.strftime('%Y%m%d-%H%M%S')}", tags=tags) as run_id:
        tracker.log_inputs(inputs)
        timings["mlflow"] = time.perf_counter() - mlflow_started
        with timed(timings, "tuning"):
            result = tune(
                data,
                tuning,
                on_trial=tracker.log_trial,
                warm_start=warm_start,
                should_stop=should_stop,
                spark=spark,
            )
        with timed(timings, "final_fit"):
            booster = fit_final(
                result.best.params,
                make_dataset(data),
                result.best.best_iteration,
                tuning.threads,
                tuning.seed,
            )
        with timed(timings, "evaluate"):
            metrics = prefixed(evaluate(booster, preprocessor, spec, holdout), "holdout")
            for name, frame in (extra_evaluations or {}).items():
                metrics.update(prefixed(evaluate(booster, preprocessor, spec, frame), name))
            reference = reference_of(booster, preprocessor, spec, holdout)
        metrics["cv_logloss"] = result.best.cv_logloss
        promoted, reason = promotion_gate(metrics) if promotion_gate else (True, "first version")
        log.info("promotion decision promoted=%s reason=%s", promoted, reason)
        metadata = replace(
            lineage,
            trigger=trigger,
            params=result.best.params,
            num_boost_round=result.best.best_iteration,
            metrics=metrics,
            trained_rows=len(training),
            tuning={"library": result.library, "trials": len(result.trials)},
            lightgbm_version=lgb.__version__,
            mlflow_run_id=run_id,
            promoted=promoted,
            promotion_reason=reason,
            spec_name=spec.name,
            form_digest=spec.form_digest(),
            extra_metrics={**(extra_metrics or {}), **seconds_metrics(timings)},
            tracking_tags={k: str(v) for k, v in {"promoted": promoted, "promotion_reason": reason, **tags}.items()},
        )
        files = {
            MODEL_FILE: booster.model_to_string().encode("utf-8"),
            PREPROCESSOR_FILE: preprocessor.to_json().encode("utf-8"),
            SPEC_FILE: to_toml(spec.for_store()).encode("utf-8"),
            REFERENCE_FILE: reference.to_json().encode("utf-8"),
        }
        with timed(timings, "publish"):
            version = store.publish(files, metadata)
        with timed(timings, "mlflow"):
            tracker.log_outcome(
                result.best.params,
                {**metrics, **metadata.extra_metrics},
                booster,
                store.path_of(version),
                tags={"store_version": version, "promoted": promoted, "promotion_reason": reason, **tags},
            )
            mlflow_closing = time.perf_counter()
    timings["mlflow"] += time.perf_counter() - mlflow_closing
    store.update_metadata(version, timings=timings)
    log.info(
        "model version trained version=%s trigger=%s rows=%s holdout_auc=%.4f seconds=%.0f %s",
        version,
        trigger,
        len(training),
        metrics["holdout_auc"],
        time.perf_counter() - started,
        " ".join(f"{phase}_seconds={seconds:.1f}" for phase, seconds in timings.items()),
    )
    return TrainedVersion(version, result.best.params, metrics, len(training), run_id, promoted, reason, timings)


def retrain_cause_tags(causes: Mapping[str, RetrainCause]) -> dict[str, str]:
    """The MLflow tags of a retrain's causes: its reasons, and each one's evidence as JSON."""
    tags = {"retrain_reasons": ",".join(sorted(causes))}
    for reason, cause in causes.items():
        tags[f"retrain_{reason}_evidence"] = json.dumps(
            {**cause.evidence, "requested_by": cause.requested_by, "requests": cause.requests}, sort_keys=True
        )
    return tags


def evaluate(
    booster: lgb.Booster, preprocessor: Preprocessor, spec: DatasetSpec, frame: pd.DataFrame
) -> dict[str, float]:
    probabilities = np.asarray(booster.predict(preprocessor.transform(frame_columns(frame, spec))))
    return classification_metrics(labels_of(frame), probabilities)


def reference_of(
    booster: lgb.Booster, preprocessor: Preprocessor, spec: DatasetSpec, holdout: pd.DataFrame
) -> Reference:
    """The first REFERENCE_ROWS holdout rows and the booster's scores of them, stored with the version."""
    records = frame_to_records(holdout.head(REFERENCE_ROWS), spec)
    return Reference(tuple(records), np.asarray(booster.predict(preprocessor.transform_records(records))))


def fixed_rounds_files(
    spec: DatasetSpec, training: pd.DataFrame, holdout: pd.DataFrame, rounds: int, reference_rows: int = 500
) -> dict[str, bytes]:
    """A model version's files without tuning: `rounds` trees on `training` with LightGBM's default
    parameters (tests and benchmarks, which need a real version of a given size quickly)."""
    preprocessor = Preprocessor.fit(spec, frame_columns(training, spec))
    data = TrainingMatrix.of(
        preprocessor.transform(frame_columns(training, spec)), labels_of(training), preprocessor.layout
    )
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1}
    booster = lgb.train(params, make_dataset(data), num_boost_round=rounds)
    return {
        MODEL_FILE: booster.model_to_string().encode(),
        PREPROCESSOR_FILE: preprocessor.to_json().encode(),
        SPEC_FILE: to_toml(spec.for_store()).encode(),
        REFERENCE_FILE: reference_of(booster, preprocessor, spec, holdout.head(reference_rows)).to_json().encode(),
    }
