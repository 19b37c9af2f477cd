"""LightGBM hyperparameter search: Hyperopt TPE (default) or scikit-optimize, each trial scored by
3-fold stratified cross-validation with early stopping on binary log loss.

Trials run one after the other in this process, or, given a Spark session, in parallel on Spark's
executors through Hyperopt's `SparkTrials` (README: "Retraining on Spark")."""

from __future__ import annotations

import functools
import logging
import math
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from tqdm import tqdm

from utils.features import FeatureLayout
from utils.settings import TuningSettings
from utils.shutdown import StopRequested

log = logging.getLogger(__name__)

MAX_BOOST_ROUNDS = 2000
EARLY_STOPPING_ROUNDS = 50
FOLDS = 3
FIXED_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "metric": "binary_logloss",
    "verbosity": -1,
    "bagging_freq": 1,
    "deterministic": True,
}


@dataclass(frozen=True)
class Dimension:
    name: str
    low: float
    high: float
    log_scale: bool = False
    integer: bool = False


SEARCH_SPACE: tuple[Dimension, ...] = (
    Dimension("learning_rate", 0.01, 0.2, log_scale=True),
    Dimension("num_leaves", 8, 128, integer=True),
    Dimension("min_child_samples", 5, 100, integer=True),
    Dimension("feature_fraction", 0.4, 1.0),
    Dimension("bagging_fraction", 0.5, 1.0),
    Dimension("lambda_l1", 1e-8, 10.0, log_scale=True),
    Dimension("lambda_l2", 1e-8, 10.0, log_scale=True),
    Dimension("cat_smooth", 1.0, 50.0, log_scale=True),
    Dimension("min_data_per_group", 5, 200, integer=True),
)


@dataclass(frozen=True)
class Trial:
    number: int
    params: dict[str, Any]
    cv_logloss: float
    best_iteration: int
    seconds: float


@dataclass(frozen=True)
class TuningResult:
    best: Trial
    trials: tuple[Trial, ...]
    library: str


@dataclass(frozen=True)
class TrainingMatrix:
    """What LightGBM trains on: the preprocessed matrix, the 0/1 labels, and the columns' names
    (letters, digits, `_`) and which of them are categorical (utils/features.py FeatureLayout)."""

    matrix: np.ndarray
    labels: np.ndarray
    feature_names: tuple[str, ...]
    categorical: tuple[int, ...]

    @classmethod
    def of(cls, matrix: np.ndarray, labels: np.ndarray, layout: FeatureLayout) -> TrainingMatrix:
        return cls(matrix, labels, layout.model_names, layout.categorical_indices)


def make_dataset(data: TrainingMatrix) -> lgb.Dataset:
    # feature_pre_filter=False: min_child_samples changes between trials on one Dataset.
    return lgb.Dataset(
        data.matrix,
        label=data.labels,
        feature_name=list(data.feature_names),
        categorical_feature=list(data.categorical),
        free_raw_data=False,
        params={"feature_pre_filter": False, "verbosity": -1},
    )


def clean_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Search-space values as LightGBM wants them (ints as int, floats as plain float)."""
    cleaned = {}
    for dimension in SEARCH_SPACE:
        value = params[dimension.name]
        cleaned[dimension.name] = int(round(value)) if dimension.integer else float(value)
    return cleaned


def cross_validate(params: Mapping[str, Any], dataset: lgb.Dataset, threads: int, seed: int) -> tuple[float, int]:
    """(mean CV binary log loss at the best iteration, best iteration)."""
    full_params = {**FIXED_PARAMS, **params, "num_threads": threads, "seed": seed}
    history = lgb.cv(
        full_params,
        dataset,
        num_boost_round=MAX_BOOST_ROUNDS,
        nfold=FOLDS,
        stratified=True,
        seed=seed,
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
    losses = list(history["valid binary_logloss-mean"])  # type: ignore[arg-type]  # lgb.cv: lists of floats
    return float(losses[-1]), len(losses)


def fit_final(params: Mapping[str, Any], dataset: lgb.Dataset, rounds: int, threads: int, seed: int) -> lgb.Booster:
    full_params = {**FIXED_PARAMS, **params, "num_threads": threads, "seed": seed}
    return lgb.train(full_params, dataset, num_boost_round=max(1, rounds))


def tune(
    data: TrainingMatrix,
    settings: TuningSettings,
    on_trial: Callable[[Trial], None] | None = None,
    warm_start: Mapping[str, Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
    spark: Any = None,
) -> TuningResult:
    """Run `settings.max_evals` trials; `warm_start` (e.g. the serving model's params) is tried first.
    With a Spark session (`spark`), the trials run on its executors (Hyperopt only)."""
    warm = clean_params(warm_start) if warm_start else None
    if spark is not None:
        if settings.hyper != "hyperopt":
            raise ValueError(f"trials run on Spark with hyperopt only, not {settings.hyper}")
        on_spark = _search_hyperopt_on_spark(data, settings, spark, warm, should_stop or (lambda: False))
        for trial in on_spark:
            _log_trial(trial)
            if on_trial is not None:
                on_trial(trial)
        return TuningResult(min(on_spark, key=lambda t: t.cv_logloss), tuple(on_spark), "hyperopt")
    dataset = make_dataset(data)
    trials: list[Trial] = []
    show_progress = sys.stderr.isatty()
    progress = tqdm(
        total=settings.max_evals, desc=f"tuning ({settings.hyper})", unit="trial", disable=not show_progress
    )

    def objective(raw_params: Mapping[str, Any]) -> float:
        if should_stop is not None and should_stop():
            raise StopRequested("stop requested: tuning abandoned between two trials")
        params = clean_params(raw_params)
        started = time.perf_counter()
        loss, best_iteration = cross_validate(params, dataset, settings.threads, settings.seed)
        trial = Trial(len(trials), params, loss, best_iteration, time.perf_counter() - started)
        trials.append(trial)
        progress.update(1)
        progress.set_postfix(best_logloss=f"{min(t.cv_logloss for t in trials):.5f}")
        _log_trial(trial)
        if on_trial is not None:
            on_trial(trial)
        return loss

    library = "skopt" if settings.hyper in ("skopt", "hyperparameterhunter") else "hyperopt"
    if settings.hyper == "hyperparameterhunter":
        log.warning(
            "HyperparameterHunter does not import on Python >= 3.10 (it is unmaintained); using "
            "scikit-optimize, the library it was built on, with the same search space"
        )
    try:
        if library == "hyperopt":
            _search_hyperopt(objective, settings, warm)
        else:
            _search_skopt(objective, settings, warm)
    finally:
        progress.close()
    best = min(trials, key=lambda t: t.cv_logloss)
    return TuningResult(best, tuple(trials), library)


def _log_trial(trial: Trial) -> None:
    log.info(
        "trial done number=%s cv_logloss=%.5f best_iteration=%s seconds=%.1f",
        trial.number,
        trial.cv_logloss,
        trial.best_iteration,
        trial.seconds,
    )


def _hyperopt_space() -> dict[str, Any]:
    from hyperopt import hp

    space = {}
    for d in SEARCH_SPACE:
        if d.log_scale:
            space[d.name] = hp.loguniform(d.name, math.log(d.low), math.log(d.high))
        elif d.integer:
            space[d.name] = hp.quniform(d.name, d.low, d.high, 1)
        else:
            space[d.name] = hp.uniform(d.name, d.low, d.high)
    return space


def _search_hyperopt(objective: Callable, settings: TuningSettings, warm: dict | None) -> None:
    from hyperopt import Trials, fmin, tpe

    space = _hyperopt_space()
    if warm and settings.max_evals == 1:
        objective(warm)
        return
    # fmin honours points_to_evaluate only when it builds the Trials object itself, and runs
    # max_evals trials on top of those points.
    fmin(
        objective,
        space,
        algo=tpe.suggest,
        max_evals=settings.max_evals - 1 if warm else settings.max_evals,
        trials=None if warm else Trials(),
        rstate=np.random.default_rng(settings.seed),
        points_to_evaluate=[warm] if warm else None,
        show_progressbar=False,
    )


# On an executor: the Dataset of the broadcast training data, built once per Python worker and kept
# for the next trial that worker runs (keyed by tuning run, so a new retrain never sees an old one).
_executor_datasets: dict[str, lgb.Dataset] = {}


def trial_on_executor(data_key: str, data: Any, threads: int, seed: int, raw_params: Mapping[str, Any]) -> dict:
    """One trial as a Spark task: `data` is the broadcast TrainingMatrix. Returns Hyperopt's result
    dictionary with what the driver needs to record the trial."""
    dataset = _executor_datasets.get(data_key)
    if dataset is None:
        _executor_datasets.clear()
        dataset = _executor_datasets[data_key] = make_dataset(data.value)
    params = clean_params(raw_params)
    started = time.perf_counter()
    loss, best_iteration = cross_validate(params, dataset, threads, seed)
    return {
        "loss": loss,
        "status": "ok",
        "params": params,
        "best_iteration": best_iteration,
        "seconds": time.perf_counter() - started,
    }


def _search_hyperopt_on_spark(
    data: TrainingMatrix,
    settings: TuningSettings,
    session: Any,
    warm: dict | None,
    should_stop: Callable[[], bool],
) -> list[Trial]:
    """`settings.max_evals` trials (the warm start first) as Spark tasks, `settings.spark.parallelism`
    at a time. The training data reaches each executor once, as a broadcast; the trial function
    carries only its key."""
    from hyperopt import STATUS_OK, SparkTrials, fmin, tpe
    from hyperopt.base import JOB_STATE_DONE, JOB_STATE_ERROR
    from hyperopt.fmin import generate_trials_to_calculate

    context = session.sparkContext
    broadcast = context.broadcast(data)
    # One core per task (spark.task.cpus): "all cores" would have parallel trials fight for them.
    threads = settings.threads if settings.threads > 0 else 1
    objective = functools.partial(trial_on_executor, uuid.uuid4().hex, broadcast, threads, settings.seed)
    # 0 means the cluster's task slots; said explicitly, SparkTrials does not warn about it.
    parallelism = settings.spark.parallelism or context.defaultParallelism
    trials = SparkTrials(parallelism=parallelism, spark_session=session)
    if warm:
        # SparkTrials does not take points_to_evaluate; a queued trial document is the same thing.
        trials.insert_trial_docs(generate_trials_to_calculate([warm])._dynamic_trials)
        trials.refresh()
    finished = threading.Event()
    watcher = threading.Thread(
        target=_cancel_on_stop, args=(trials, context, should_stop, finished), name="spark-trials-stop", daemon=True
    )
    watcher.start()
    log.info(
        "tuning on spark trials=%s parallelism=%s threads_per_trial=%s rows=%s",
        settings.max_evals,
        trials.parallelism,
        threads,
        len(data.labels),
    )
    try:
        fmin(
            objective,
            _hyperopt_space(),
            algo=tpe.suggest,
            max_evals=settings.max_evals,
            trials=trials,
            rstate=np.random.default_rng(settings.seed),
            show_progressbar=False,
            return_argmin=False,
        )
    finally:
        finished.set()
        watcher.join()
        broadcast.destroy()
    if should_stop():
        raise StopRequested("stop requested: tuning on Spark cancelled")
    for failed in (t for t in trials.trials if t["state"] == JOB_STATE_ERROR):
        log.warning("trial failed on spark number=%s error=%s", failed["tid"], failed["misc"].get("error"))
    done = sorted(
        (t for t in trials.trials if t["state"] == JOB_STATE_DONE and t["result"].get("status") == STATUS_OK),
        key=lambda t: t["tid"],
    )
    if not done:
        raise RuntimeError(f"every trial failed on Spark ({len(trials.trials)} tried); see logs/spark-*.log")
    results = [(t["tid"], t["result"]) for t in done]
    return [Trial(tid, r["params"], r["loss"], r["best_iteration"], r["seconds"]) for tid, r in results]


def _cancel_on_stop(trials: Any, context: Any, should_stop: Callable[[], bool], finished: threading.Event) -> None:
    """Stop a Spark search as soon as the service is asked to stop, not after the running trials:
    fmin ends once the SparkTrials is cancelled, and the trials' Spark jobs are cancelled."""
    while not finished.wait(0.5):
        if should_stop():
            # The flag SparkTrials' own timeout sets; fmin checks it between its polls.
            trials._fmin_cancelled = True
            trials._fmin_cancelled_reason = "stop requested"
            context.cancelAllJobs()
            return


def _search_skopt(objective: Callable, settings: TuningSettings, warm: dict | None) -> None:
    from skopt import Optimizer
    from skopt.space import Integer, Real

    dimensions = [
        Integer(int(d.low), int(d.high), name=d.name)
        if d.integer
        else Real(d.low, d.high, prior="log-uniform" if d.log_scale else "uniform", name=d.name)
        for d in SEARCH_SPACE
    ]
    optimizer = Optimizer(
        dimensions, base_estimator="GP", n_initial_points=min(10, settings.max_evals), random_state=settings.seed
    )
    names = [d.name for d in SEARCH_SPACE]
    for number in range(settings.max_evals):
        if number == 0 and warm:
            point = [min(max(warm[d.name], d.low), d.high) for d in SEARCH_SPACE]
        else:
            point = optimizer.ask()
        loss = objective(dict(zip(names, point, strict=True)))
        optimizer.tell(point, loss)
