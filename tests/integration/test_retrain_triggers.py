"""A real predictor's drift trigger on shifted traffic: it asks for a retrain with reason `drift` and
its evidence, and the trainer records both on the new version (metadata and MLflow run)."""

import json

from kafka import KafkaProducer
from mlflow import MlflowClient

from utils.data import default_spec, frame_to_records, labels_of, load_dataset
from utils.form import Form
from utils.messages.codec import encode
from utils.messages.requests import PredictionRequest
from utils.model_store import ModelStore

ADULT = Form(default_spec())
WINDOW = 500


def older_by_ten_years(count: int) -> list[PredictionRequest]:
    """Labelled requests of the streamed rows, everyone ten years older: one field moved by a constant."""
    rows = load_dataset(ADULT.spec).stream.head(count)
    rows = rows.assign(age=rows["age"] + 10)
    return [
        PredictionRequest(f"older-{index}", record, int(label))
        for index, (record, label) in enumerate(zip(frame_to_records(rows, ADULT.spec), labels_of(rows), strict=True))
    ]


def test_shifted_traffic_triggers_a_retrain_for_drift_and_the_trainer_records_why(pipeline):
    predictor = pipeline.start_predictor(
        "--retrain-every",
        "0",  # the count trigger off: any retrain here is the drift trigger's
        "--retrain-on-drift",
        "0.2",
        "--retrain-window",
        str(WINDOW),
        "--retrain-cooldown-s",
        "3600",
    )
    trainer = pipeline.start_trainer()
    producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap, linger_ms=5)
    try:
        for request in older_by_ten_years(3 * WINDOW):
            producer.send(pipeline.topic("app_messages"), encode(request.to_dict(ADULT)), request.request_id.encode())
        producer.flush(timeout=60)
    finally:
        producer.close()

    [requested] = pipeline.wait_for_event("retrain_requested", 1, 120, service=predictor, reason="drift")
    evidence = requested["evidence"]
    assert evidence["window"] == WINDOW and evidence["psi"] > 0.2 and evidence["serving_version"] == 1
    assert "age" in evidence["drifted"].split(",")
    assert requested["newest_version_known"] == 1

    [completed] = pipeline.wait_for_event("training_completed", 1, 420, service=trainer, version=2)
    assert completed["observations_end_offset"] == requested["observations_end_offset"]
    store = ModelStore(pipeline.root / "models")
    metadata = store.metadata(completed["version"])
    assert list(metadata.retrain_causes) == ["drift"]
    cause = metadata.retrain_causes["drift"]
    assert cause.evidence == evidence and cause.requested_by == requested["requested_by"]
    tags = MlflowClient(pipeline.env["MLFLOW_TRACKING_URI"]).get_run(metadata.mlflow_run_id).data.tags
    assert tags["retrain_reasons"] == "drift"
    assert json.loads(tags["retrain_drift_evidence"])["psi"] == evidence["psi"]
    assert [e["reason"] for e in pipeline.events() if e["event"] == "retrain_requested"] == ["drift"], (
        "one request: the cooldown holds the trigger back while the stream stays shifted"
    )
