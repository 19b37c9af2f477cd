"""Bad models never serve: a corrupt or missing version is refused by the predictor, a worse
model is rejected by the trainer's champion/challenger gate, and an operator can roll back."""

import shutil
import uuid

import mlflow
from kafka import KafkaProducer
from mlflow import MlflowClient

from tests.integration.processes import run_script
from utils.data import default_spec, frame_to_records, labels_of, load_dataset
from utils.form import Form
from utils.messages.codec import encode
from utils.messages.events import TrainingCompleted
from utils.messages.requests import PredictionRequest
from utils.model_store import ModelStore
from utils.settings import DEFAULT_EXPERIMENT, DEFAULT_REGISTERED_MODEL


def announce(pipeline, version: int) -> None:
    """What a trainer (or an attacker with write access to the topic) could send."""
    producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap)
    message = TrainingCompleted(version, True, {"holdout_auc": 0.99}, 1, 0)
    producer.send(pipeline.topic("retrain_topic"), value=encode(message.to_dict()))
    producer.flush()
    producer.close()


def test_corrupt_and_missing_versions_are_refused(pipeline):
    predictor = pipeline.start_predictor()
    store = pipeline.root / "models"
    shutil.copytree(store / "1", store / "2")
    model = store / "2" / "model.txt"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 3])  # truncated, checksum unchanged

    announce(pipeline, 2)
    [corrupt] = pipeline.wait_for_event("model_refused", service=predictor, version=2)
    assert "checksum" in corrupt["reason"], corrupt
    announce(pipeline, 99)
    [missing] = pipeline.wait_for_event("model_refused", service=predictor, version=99)
    assert "does not exist" in missing["reason"], missing

    refused = [m for m in pipeline.read_topic("retrain_topic") if m["event"] == "model_refused"]
    assert sorted(m["version"] for m in refused) == [2, 99]
    assert predictor.metric("pipeline_models_refused_total") == 2
    assert predictor.metric("pipeline_model_version") == 1 and predictor.metric("pipeline_model_swaps_total") == 0
    summary, _ = pipeline.sample_app("--n", "20", "--rate", "0", "--timeout", "60")
    assert summary["model_versions"] == [1] and summary["unanswered"] == 0
    assert predictor.process.poll() is None


def test_worse_model_is_rejected_and_rollback_is_one_command(pipeline):
    flipped = 12000
    predictor = pipeline.start_predictor("--retrain-every", str(flipped))
    trainer = pipeline.start_trainer("--threads", "2")  # default promotion tolerance

    # An upstream labelling bug: training rows come back with their labels flipped.
    spec = default_spec()
    rows = load_dataset(spec).training.head(flipped)
    producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap, linger_ms=20)
    for features, label in zip(frame_to_records(rows, spec), labels_of(rows), strict=True):
        request = PredictionRequest(str(uuid.uuid4()), features, 1 - int(label))
        producer.send(pipeline.topic("app_messages"), value=encode(request.to_dict(Form(spec))))
    producer.flush()
    producer.close()

    pipeline.wait_for_event("training_completed", 1, 600, service=trainer, version=2, promoted=False)
    store = pipeline.root / "models"
    metadata = ModelStore(store).metadata(2)
    assert metadata.promoted is False and "worse" in metadata.promotion_reason
    assert metadata.new_rows == flipped
    assert (store / "CURRENT").read_text().strip() == "1"
    summary, _ = pipeline.sample_app("--n", "20", "--rate", "0", "--timeout", "60")
    assert summary["model_versions"] == [1]

    mlflow.set_tracking_uri(pipeline.env["MLFLOW_TRACKING_URI"])
    client = MlflowClient()
    experiment = client.get_experiment_by_name(DEFAULT_EXPERIMENT)
    assert experiment is not None
    rejected = client.search_runs([experiment.experiment_id], "tags.promoted = 'False'")
    assert len(rejected) == 1 and rejected[0].data.tags["store_version"] == "2"
    # Flipped labels do not move the features, but they do move what the model is asked to learn:
    # the drift figures are recorded with the retrain either way.
    assert {"drift_psi_age", "drift_probability_psi"} <= set(rejected[0].data.metrics)
    assert rejected[0].data.metrics["drift_psi_age"] < 0.2

    # Rolling back (here: to the rejected version, on purpose) is one command; a missing version is refused.
    missing = run_script("rollback.py", ["7"], pipeline.env)
    assert missing.returncode == 2 and "version 7" in missing.stderr
    result = run_script("rollback.py", ["2"], pipeline.env)
    assert result.returncode == 0, result.stderr[-2000:]
    predictor.wait_for_metric("pipeline_model_version", lambda version: version == 2)
    champion = client.get_model_version_by_alias(DEFAULT_REGISTERED_MODEL, "champion")
    assert champion.tags["store_version"] == "2", "the champion alias follows the rollback"
    summary, _ = pipeline.sample_app("--n", "20", "--rate", "0", "--start", "20", "--timeout", "60")
    assert summary["model_versions"] == [2]
    # The trainer does not undo an operator's choice when it restarts.
    trainer.stop()
    restarted = pipeline.start_trainer()
    pipeline.wait_for_event("training_completed", service=restarted, version=2, promoted=True)
    assert (store / "CURRENT").read_text().strip() == "2"
