"""A version published to the store whose MLflow record an outage cut short is recorded later, once."""

import lightgbm as lgb
from mlflow import MlflowClient

from train.mlflow_runs import Tracker
from utils.model_store import MODEL_FILE, ModelStore, VersionMetadata
from utils.settings import DEFAULT_REGISTERED_MODEL


def test_an_interrupted_version_is_recorded_once_in_its_own_run(tmp_path, small_model_files):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "exp", DEFAULT_REGISTERED_MODEL)
    store = ModelStore(tmp_path / "models")
    # As train_version does, up to the outage: the run exists, the version is published, nothing logged.
    with tracker.session("retrain-x", {"trigger": "retrain"}) as run_id:
        pass
    metadata = VersionMetadata(
        params={"num_leaves": 8},
        metrics={"holdout_auc": 0.9},
        mlflow_run_id=run_id,
        extra_metrics={"drift_psi_age": 0.01},
        tracking_tags={"promoted": "True", "trigger": "retrain"},
    )
    version = store.publish(small_model_files, metadata)

    assert not tracker.is_registered(version)
    assert tracker.ensure_recorded(store, version) is True
    assert tracker.ensure_recorded(store, version) is False, "a second call changes nothing"

    client = MlflowClient(uri)
    [registered] = client.search_model_versions(f"name='{DEFAULT_REGISTERED_MODEL}'")
    assert registered.tags["store_version"] == str(version) and registered.run_id == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["holdout_auc"] == 0.9 and run.data.metrics["drift_psi_age"] == 0.01
    assert run.data.params["best_num_leaves"] == "8" and run.data.tags["trigger"] == "retrain"
    booster = lgb.Booster(model_str=small_model_files[MODEL_FILE].decode())
    assert booster.num_trees() == 20


def test_a_training_run_names_its_datasets_and_the_experiment_is_a_training_one(tmp_path, adult):
    import json

    from train.mlflow_runs import data_input, observations_input

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "exp", DEFAULT_REGISTERED_MODEL)
    base = adult.training.head(200)
    with tracker.session("retrain-x", {"trigger": "retrain"}) as run_id:
        tracker.log_inputs([data_input(adult.spec, base), observations_input(base.head(50), "obs-topic", 950, 1000)])

    client = MlflowClient(uri)
    run_inputs = client.get_run(run_id).inputs
    assert run_inputs is not None
    inputs = run_inputs.dataset_inputs
    by_name = {item.dataset.name: item for item in inputs}
    assert set(by_name) == {"adult.data", "observations[950:1000)"}
    assert adult.spec.files[0].sha256.startswith(by_name["adult.data"].dataset.digest)
    kafka = by_name["observations[950:1000)"].dataset
    assert kafka.source_type == "kafka"
    assert json.loads(kafka.source) == {"topic": "obs-topic", "partition": 0, "start_offset": 950, "end_offset": 1000}
    assert {tag.value for item in inputs for tag in item.tags if tag.key == "mlflow.data.context"} == {"training"}
    experiment = client.get_experiment_by_name("exp")
    assert experiment is not None and experiment.tags["mlflow.experimentKind"] == "custom_model_development"
