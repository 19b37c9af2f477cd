"""initialize.py's work: the first model version, trained on adult.data only."""

from __future__ import annotations

import logging
import threading

from train.champion import Registry, make_current
from train.mlflow_runs import Tracker, adult_data_input
from train.pipeline import train_version
from train.spark import spark_session
from utils.data import load_test, load_train, split_test
from utils.mlflow_outage import probe
from utils.model_store import ModelStore
from utils.settings import InitializeSettings

log = logging.getLogger(__name__)


def run(settings: InitializeSettings, stop: threading.Event) -> int:
    store = ModelStore(settings.common.model_store)
    current = store.current_version()
    if current is not None and not settings.force:
        log.info(
            "a model already serves, nothing to do version=%s store=%s (use --force to train a new one)",
            current,
            store.root,
        )
        return 0
    probe(settings.common.tracking_uri)  # before the long search: exit 4 at once if MLflow is down
    training = load_train(settings.download)
    test = load_test(settings.download)
    _, holdout = split_test(test)
    log.info("data loaded training_rows=%s holdout_rows=%s test_rows=%s", len(training), len(holdout), len(test))
    tracker = Tracker(settings.common.tracking_uri, settings.experiment, settings.registered_model)
    with spark_session(settings.tuning.spark, "initialize") as spark:
        trained = train_version(
            training,
            holdout,
            settings.tuning,
            store,
            tracker,
            trigger="initialize",
            extra_evaluations={"adult_test": test},
            should_stop=stop.is_set,
            inputs=[adult_data_input(training)],
            spark=spark,
        )
    make_current(store, trained.version, Registry(settings.common.tracking_uri, settings.registered_model))
    store.prune(settings.keep_versions)
    log.info(
        "initial model ready version=%s adult_test_auc=%.4f holdout_auc=%.4f store=%s",
        trained.version,
        trained.metrics["adult_test_auc"],
        trained.metrics["holdout_auc"],
        store.root,
    )
    return 0
