"""A shared MLflow tracking server over HTTP, as teams with predictors on several machines run it: the
pipeline works against it, and every service rides out its outages (waits, retries, completes)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.integration.conftest import Pipeline
from tests.integration.figures import record_figures
from tests.integration.processes import ServiceProcess, run_script
from utils.kafka.clients import create_admin, create_producer
from utils.kafka.interface import ProducerOptions, TopicSpec
from utils.messages.codec import encode
from utils.messages.events import TrainingCompleted
from utils.model_store import ModelStore
from utils.settings import DEFAULT_REGISTERED_MODEL, KafkaSettings

OUTAGE_S = 20


def free_port(low: int = 29210, high: int = 29300) -> int:
    """A port below the ephemeral range (the server restarts on the same port after an outage)."""
    for port in range(low, high):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


class TrackingServer:
    """`mlflow server` on a free port, its store and artifacts in the test's folder."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 90) -> None:
        log = open(self.root / "mlflow-server.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port)]
            + ["--backend-store-uri", f"sqlite:///{self.root / 'server.db'}"]
            + ["--artifacts-destination", str(self.root / "artifacts"), "--workers", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stop() ends the server and its workers together
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{self.uri}/health", timeout=2).read().strip() == b"OK":
                    return
            except OSError:
                time.sleep(0.5)
            assert self.process.poll() is None, (self.root / "mlflow-server.log").read_text()[-3000:]
        raise AssertionError(f"mlflow server not ready after {timeout_s}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def server_pipeline(tmp_path, initialized):
    """A pipeline whose only tracking store is an HTTP server; version 1 made by initialize.py through it."""
    server = TrackingServer(tmp_path)
    server.start()
    world = Pipeline(tmp_path, initialized)
    shutil.rmtree(world.root / "models")
    (world.root / "mlflow.db").unlink()
    world.env["MLFLOW_TRACKING_URI"] = server.uri
    result = run_script("initialize.py", ["--max-evals", "2", "--threads", "2"], world.env)
    assert result.returncode == 0, result.stderr[-3000:]
    world.server = server  # type: ignore[attr-defined]
    yield world
    world.stop_all()
    server.stop()


def registry_store_versions(uri: str) -> list[int]:
    versions = MlflowClient(uri).search_model_versions(f"name='{DEFAULT_REGISTERED_MODEL}'")
    return sorted(int(v.tags["store_version"]) for v in versions)


def announced(pipeline: Pipeline, version: int) -> int:
    events = pipeline.read_topic("retrain_topic")
    return sum(1 for m in events if m["event"] == "training_completed" and m["version"] == version)


def store_versions(pipeline: Pipeline) -> list[int]:
    return sorted(int(p.name) for p in (pipeline.root / "models").iterdir() if p.name.isdigit())


def still_waiting_for_tracking(service: ServiceProcess) -> None:
    """A service just started while MLflow is down waits for it: its gauge says so, and it is alive
    and not ready."""
    service.wait_for_metric("pipeline_mlflow_reachable", lambda value: value == 0, OUTAGE_S * 3)
    assert service.process.poll() is None, f"{service.name} waits, it does not exit:\n{service.tail()}"
    assert service.metric("pipeline_ready") == 0, f"{service.name} ready while MLflow is down"


def test_the_pipeline_runs_on_a_shared_tracking_server(server_pipeline):
    pipeline = server_pipeline
    # A predictor on "another machine": versions come from the registry into its own folder.
    predictor = pipeline.start_predictor(
        "--retrain-every", "40", "--model-source", "mlflow", "--model-store", str(pipeline.root / "other-machine")
    )
    trainer = pipeline.start_trainer("--promotion-tolerance", "1.0")
    for phase, version in enumerate((1, 2, 3)):
        summary, _ = pipeline.sample_app("--n", "40", "--rate", "0", "--start", str(phase * 40), "--timeout", "90")
        assert summary["unanswered"] == 0 and summary["model_versions"] == [version]
        if version < 3:
            pipeline.wait_for_event("training_completed", 1, 300, service=trainer, version=version + 1, promoted=True)
            predictor.wait_for_metric(
                "pipeline_model_version", lambda serving, wanted=version + 1: serving == wanted, 90
            )
            assert predictor.metric("pipeline_model_swaps_total") == version, "one swap per version"
    assert registry_store_versions(pipeline.server.uri) == [1, 2, 3]
    champion = MlflowClient(pipeline.server.uri).get_model_version_by_alias(DEFAULT_REGISTERED_MODEL, "champion")
    assert champion.tags["store_version"] == "3"
    assert sorted(p.name for p in (pipeline.root / "other-machine").iterdir() if p.name.isdigit()) == ["1", "2", "3"]


def test_the_trainer_waits_for_tracking_and_completes_a_retrain_cut_by_an_outage(server_pipeline):
    pipeline = server_pipeline
    server: TrackingServer = pipeline.server
    predictor = pipeline.start_predictor("--retrain-every", "50")

    # Down before the trainer starts: it waits (alive), and is ready once the server returns.
    server.stop()
    trainer = pipeline.start("trainer.py", "--max-evals", "8", "--promotion-tolerance", "1.0")
    still_waiting_for_tracking(trainer)
    server.start()
    up_at = time.monotonic()
    trainer.wait_until_ready(120)
    ready_after_s = time.monotonic() - up_at
    assert trainer.metric("pipeline_mlflow_reachable") == 1

    # Down in the middle of a retrain: the request stays uncommitted, the retrain completes after.
    summary, _ = pipeline.sample_app("--n", "50", "--rate", "0", "--timeout", "90")
    assert summary["unanswered"] == 0
    trainer.wait_for_metric("pipeline_retrain_end_offset", lambda end: end == 50, 120)
    time.sleep(2)  # inside the tuning session: MLflow run open, trials being logged
    server.stop()
    during, _ = pipeline.sample_app("--n", "30", "--rate", "0", "--start", "50", "--timeout", "90")
    time.sleep(max(0, OUTAGE_S - 5))
    server.start()
    up_at = time.monotonic()
    pipeline.wait_for_event("training_completed", 1, 300, service=trainer, version=2, promoted=True)
    completed_after_s = time.monotonic() - up_at
    predictor.wait_for_metric("pipeline_model_version", lambda version: version == 2, 180)

    assert during["unanswered"] == 0, "requests were answered during the outage"
    assert trainer.process.poll() is None
    assert store_versions(pipeline) == [1, 2]
    assert registry_store_versions(server.uri) == [1, 2], "one registry version per store version"
    assert announced(pipeline, 2) == 1, "version 2 announced once"
    assert predictor.metric("pipeline_model_swaps_total") == 1
    metadata = ModelStore(pipeline.root / "models").metadata(2)
    run = MlflowClient(server.uri).get_run(metadata.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.data.tags["store_version"] == "2"
    record_figures(
        "tracking_outage_trainer",
        {
            "outage_s": OUTAGE_S,
            "server_up_to_trainer_ready_s": round(ready_after_s, 1),
            "server_up_to_retrain_completed_s": round(completed_after_s, 1),
            "answered_during_outage": during["answered"],
        },
    )


def test_a_registry_predictor_serves_through_an_outage_and_swaps_after(server_pipeline):
    pipeline = server_pipeline
    server: TrackingServer = pipeline.server
    cache = pipeline.root / "other-machine"
    predictor = pipeline.start_predictor("--model-source", "mlflow", "--model-store", str(cache))
    assert predictor.metric("pipeline_mlflow_reachable") == 1, "its champion came from MLflow"
    # Version 2 is trained and registered (as a trainer would), then MLflow goes down before this
    # predictor has fetched it; the announcement arrives during the outage. (initialize.py --force
    # announces a version itself: here on a topic this predictor does not follow.)
    unwatched = "unwatched-events"
    admin = create_admin(KafkaSettings(bootstrap_servers=pipeline.bootstrap))
    admin.create_topics([TopicSpec(pipeline.topic(unwatched), 1)])
    admin.close()
    env = {**pipeline.env, "PIPELINE_MODEL_EVENTS_TOPIC": unwatched}
    result = run_script("initialize.py", ["--force", "--max-evals", "1", "--threads", "2"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    server.stop()
    producer = create_producer(KafkaSettings(bootstrap_servers=pipeline.bootstrap), ProducerOptions("test"))
    producer.send(pipeline.topic("retrain_topic"), encode(TrainingCompleted(2, True, {}, 1, 0).to_dict()))
    producer.close()
    predictor.wait_for_metric("pipeline_mlflow_reachable", lambda up: up == 0, 60)
    down_at = time.monotonic()
    during, _ = pipeline.sample_app("--n", "100", "--rate", "20", "--timeout", "60")
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
    assert during["sent"] == during["answered"] == 100 and during["model_versions"] == [1]
    server.start()
    up_at = time.monotonic()
    predictor.wait_for_metric("pipeline_model_version", lambda version: version == 2, 120)
    assert predictor.metric("pipeline_mlflow_reachable") == 1
    record_figures(
        "tracking_outage_predictor",
        {"answered_during_outage": during["answered"], "server_up_to_swap_s": round(time.monotonic() - up_at, 1)},
    )
    after, _ = pipeline.sample_app("--n", "20", "--rate", "0", "--start", "100", "--timeout", "60")
    assert after["model_versions"] == [2] and after["unanswered"] == 0
    log = predictor.log_text()
    assert log.count("MLflow unreachable at") == 1, "one line per outage"
    assert "Retrying (Retry(" not in log, "urllib3's per-attempt warnings are folded"
    refused = [m for m in pipeline.read_topic("retrain_topic") if m["event"] == "model_refused"]
    assert refused == [] and predictor.metric("pipeline_models_refused_total") == 0, "an outage is not a bad model"
    assert Counter(p.name for p in cache.iterdir() if p.name.isdigit()) == Counter(["1", "2"])


def test_one_shot_commands_exit_4_when_tracking_is_down(tmp_path, initialized):
    world = Pipeline(tmp_path, initialized)
    world.env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for script, args in (("rollback.py", ["1"]), ("initialize.py", ["--force", "--max-evals", "1"])):
        result = run_script(script, args, world.env, timeout_s=300)  # it must end, not wait for MLflow
        assert result.returncode == 4, (script, result.stderr[-2000:])
        assert "MLflow unreachable" in result.stderr and "Traceback" not in result.stderr
    assert (world.root / "models" / "CURRENT").read_text().strip() == "1", "nothing changed"


def test_a_trainer_killed_during_an_outage_completes_the_retrain_after_restart(server_pipeline):
    pipeline = server_pipeline
    server: TrackingServer = pipeline.server
    predictor = pipeline.start_predictor("--retrain-every", "50")
    trainer = pipeline.start_trainer("--max-evals", "8", "--promotion-tolerance", "1.0")
    summary, _ = pipeline.sample_app("--n", "50", "--rate", "0", "--timeout", "90")
    assert summary["unanswered"] == 0
    trainer.wait_for_metric("pipeline_retrain_end_offset", lambda end: end == 50, 120)
    time.sleep(2)
    assert trainer.metric("pipeline_mlflow_reachable") == 1
    server.stop()
    trainer.wait_for_metric("pipeline_mlflow_reachable", lambda up: up == 0, 60)
    trainer.kill9()
    restarted = pipeline.start("trainer.py", "--max-evals", "2", "--promotion-tolerance", "1.0")
    still_waiting_for_tracking(restarted)
    server.start()
    pipeline.wait_for_event("training_completed", 1, 300, service=restarted, version=2, promoted=True)
    predictor.wait_for_metric("pipeline_model_version", lambda version: version == 2, 180)

    assert store_versions(pipeline) == [1, 2]
    assert registry_store_versions(server.uri) == [1, 2], "one registry version per store version"
    assert announced(pipeline, 2) == 1, "version 2 announced once"
    assert predictor.metric("pipeline_model_swaps_total") == 1
