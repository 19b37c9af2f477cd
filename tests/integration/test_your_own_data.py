"""Your own data, end to end: a CSV nobody wrote a spec for (the bundled flight delays, from the
dmba package) -> initialize infers its spec -> predictor, trainer and sample app run on it exactly
as on Adult, with a retrain and a swap; and a spec change (`initialize.py --force` with another
spec) starts a new lineage that the predictor swaps to, answering requests of the old form with
`missing_field`."""

import json
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer

from tests.conftest import ADULT_RECORD
from tests.integration.conftest import Pipeline, base_env
from tests.integration.processes import ROOT, run_script
from utils.kafka.clients import CLIENTS
from utils.model_store import ModelStore

FLIGHTS = ROOT / "data" / "flight_delays" / "FlightDelays.csv.gz"
FLIGHT_SPEC = ROOT / "data" / "flight_delays" / "spec.toml"
INFER = [
    "--data",
    str(FLIGHTS),
    "--label",
    "Flight Status",
    "--positive",
    "delayed",
    "--ignore",
    "DEP_TIME,TAIL_NUM,FL_DATE",
]
FLIGHT = {
    "CRS_DEP_TIME": 1455,
    "CARRIER": "OH",
    "DEST": "JFK",
    "DISTANCE": 184,
    "FL_NUM": 5935,  # a JSON number for a numeric-looking category: matched by its text
    "ORIGIN": "BWI",
    "Weather": 0,
    "DAY_WEEK": 4,
    "DAY_OF_MONTH": 1,
}


@pytest.fixture(scope="module")
def flights_initialized(tmp_path_factory) -> Path:
    """A store and MLflow database whose first version was trained on the inferred flight spec."""
    root = tmp_path_factory.mktemp("flights-initialized")
    result = run_script("initialize.py", [*INFER, "--max-evals", "3", "--threads", "2"], base_env(root, "unused-"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert '[label]\ncolumn = "Flight Status"' in result.stdout, "initialize shows the spec it inferred"
    return root


@pytest.fixture
def flights(tmp_path, flights_initialized):
    world = Pipeline(tmp_path, flights_initialized)
    yield world
    world.stop_all()


def send(pipeline: Pipeline, *payloads: dict) -> None:
    producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap)
    try:
        for payload in payloads:
            producer.send(pipeline.topic("app_messages"), json.dumps(payload).encode(), payload["request_id"].encode())
        producer.flush(timeout=30)
    finally:
        producer.close()


def answers_to(pipeline: Pipeline, *request_ids: str, timeout_s: float = 60) -> dict[str, dict]:
    """The answers to these requests, once all are there."""
    import time

    deadline = time.monotonic() + timeout_s
    found: dict[str, dict] = {}
    while time.monotonic() < deadline:
        found = {
            a["request_id"]: a
            for a in pipeline.read_topic("predictions", timeout_s=1)
            if a["request_id"] in request_ids
        }
        if len(found) == len(request_ids):
            return found
        time.sleep(0.5)
    raise AssertionError(f"{len(found)} of {len(request_ids)} answered after {timeout_s}s")


@pytest.mark.parametrize("client", CLIENTS)
def test_a_csv_of_your_own_runs_end_to_end_from_its_inferred_spec(flights, client):
    pipeline = flights
    pipeline.env["KAFKA_CLIENT"] = client
    store = ModelStore(pipeline.root / "models")
    first = store.metadata(1)
    assert first.spec_name == "flight_delays" and first.metrics["holdout_auc"] > 0.6
    predictor = pipeline.start_predictor("--retrain-every", "60")
    trainer = pipeline.start_trainer("--promotion-tolerance", "1.0")

    data = ["--data", str(FLIGHTS), "--rate", "0", "--timeout", "90"]
    summary, _ = pipeline.sample_app(*data, "--n", "60")
    assert summary["sent"] == summary["answered"] == 60
    assert summary["unanswered"] == summary["errors"] == 0 and summary["model_versions"] == [1]
    pipeline.wait_for_event("training_completed", 1, 300, service=trainer, version=2, promoted=True)
    predictor.wait_for_metric("pipeline_model_version", lambda version: version == 2, 60)
    summary, _ = pipeline.sample_app(*data, "--n", "30", "--start", "60")
    assert summary["unanswered"] == summary["errors"] == 0 and summary["model_versions"] == [2]

    second = store.metadata(2)
    assert (second.spec_name, second.form_digest) == (first.spec_name, first.form_digest), "a retrain keeps the form"
    assert second.new_rows == 60 and second.trained_rows == first.trained_rows + 60
    observation = pipeline.read_topic("observations")[0]
    assert set(observation["features"]) == set(FLIGHT) and observation["label"] in (0, 1)

    ok, refused, unknown = (f"{name}-{uuid.uuid4().hex[:6]}" for name in ("ok", "refused", "unknown"))
    send(
        pipeline,
        {"request_id": ok, "data": {**FLIGHT, "Flight Status": "delayed"}},
        {"request_id": refused, "data": {**FLIGHT, "CARRIER": 7}},
        {"request_id": unknown, "data": {**FLIGHT, "CARRIER": "never-seen"}},
    )
    answers = answers_to(pipeline, ok, refused, unknown)
    assert answers[ok]["model_version"] == 2 and 0 <= answers[ok]["probability"] <= 1
    assert answers[refused]["error"]["code"] == "invalid_type" and "CARRIER" in answers[refused]["error"]["message"]
    assert "prediction" in answers[unknown], "an unseen category is scored as unknown"


def test_a_spec_change_is_a_new_lineage_the_predictor_swaps_to(pipeline):
    predictor = pipeline.start_predictor()
    before = f"adult-{uuid.uuid4().hex[:6]}"
    send(pipeline, {"request_id": before, "data": ADULT_RECORD})
    assert answers_to(pipeline, before)[before]["model_version"] == 1

    result = run_script("initialize.py", ["--force", "--spec", str(FLIGHT_SPEC), "--max-evals", "2"], pipeline.env)
    assert result.returncode == 0, result.stderr[-3000:]
    pipeline.wait_for_event("training_completed", version=2, promoted=True)
    predictor.wait_for_metric("pipeline_model_version", lambda version: version == 2, 60)

    old, new = f"old-form-{uuid.uuid4().hex[:6]}", f"new-form-{uuid.uuid4().hex[:6]}"
    send(pipeline, {"request_id": old, "data": ADULT_RECORD}, {"request_id": new, "data": FLIGHT})
    answers = answers_to(pipeline, old, new)
    assert answers[old]["error"]["code"] == "missing_field", "a request of the old form is answered, not lost"
    assert answers[new]["model_version"] == 2
    store = ModelStore(pipeline.root / "models")
    assert store.metadata(1).form_digest != store.metadata(2).form_digest
    assert predictor.process.poll() is None
