"""Hyperopt trials on a real Spark: an embedded local[2] session, and a standalone cluster (one
master, one worker, started from the installed pyspark) that a real trainer retrains on."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pyspark
import pytest
from kafka import KafkaProducer
from mlflow.tracking import MlflowClient

from tests.integration.conftest import Pipeline
from tests.integration.metrics import free_port
from tests.integration.processes import ROOT
from train.spark import spark_session
from train.tune import SEARCH_SPACE, TrainingMatrix, tune
from utils.data import default_spec, frame_columns, frame_to_records, labels_of, load_dataset
from utils.features import Preprocessor
from utils.messages.codec import encode
from utils.messages.events import RetrainRequested
from utils.messages.requests import Observation
from utils.model_store import ModelStore, VersionMetadata
from utils.settings import DEFAULT_EXPERIMENT, SparkSettings, TuningSettings
from utils.shutdown import StopRequested

SPARK_HOME = Path(pyspark.__file__).resolve().parent
LOGS = ROOT / "logs"
TRIALS = 4
OBSERVATIONS = 1500
SPARK_LOG_LINES = ("log4j", "NativeCodeLoader", "WARN Utils", "Using incubator modules")


@pytest.fixture(scope="module")
def training():
    spec = default_spec()
    train = load_dataset(spec).training.sample(6000, random_state=1)
    preprocessor = Preprocessor.fit(spec, frame_columns(train, spec))
    return TrainingMatrix.of(preprocessor.transform(frame_columns(train, spec)), labels_of(train), preprocessor.layout)


@pytest.fixture(scope="module")
def local_spark() -> Iterator:
    """One embedded local[2] session for this module (one Spark context per process)."""
    with spark_session(SparkSettings(master="local[2]", parallelism=2), "test") as session:
        yield session


def test_trials_on_spark_are_the_trials_in_process(training, local_spark):
    """TPE's first 20 suggestions are random draws from the seed: the same points in either place,
    each scored by the same deterministic cross-validation, so the same losses; the warm start first."""

    warm = {d.name: (int(d.low) if d.integer else d.low) for d in SEARCH_SPACE}
    settings = TuningSettings(max_evals=TRIALS, threads=1, spark=SparkSettings(master="local[2]", parallelism=2))
    recorded: list = []
    on_spark = tune(training, settings, warm_start=warm, spark=local_spark, on_trial=recorded.append)
    in_process = tune(training, TuningSettings(max_evals=TRIALS, threads=1), warm_start=warm)
    assert [t.number for t in on_spark.trials] == list(range(TRIALS)) == [t.number for t in recorded]
    assert on_spark.trials[0].params == warm
    assert [t.params for t in on_spark.trials] == [t.params for t in in_process.trials]
    assert [t.cv_logloss for t in on_spark.trials] == pytest.approx([t.cv_logloss for t in in_process.trials])
    assert on_spark.best.cv_logloss == min(t.cv_logloss for t in on_spark.trials)


def test_a_stop_request_cancels_the_running_trials(training, local_spark):

    settings = TuningSettings(max_evals=200, threads=1, spark=SparkSettings(master="local[2]", parallelism=2))
    started = time.monotonic()
    stop = threading.Event()
    threading.Timer(3.0, stop.set).start()
    with pytest.raises(StopRequested):
        tune(training, settings, should_stop=stop.is_set, spark=local_spark)
    # 200 trials of a 3-fold CV on 6,000 rows would take many minutes on 2 cores.
    assert time.monotonic() - started < 120


class StandaloneCluster:
    """A Spark standalone master and one worker on loopback; their output goes to logs/."""

    def __init__(self, work_dir: Path):
        self.port = free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_HOME": str(SPARK_HOME)}
        LOGS.mkdir(exist_ok=True)
        self.master_log = LOGS / "spark-test-master.log"
        self.worker_log = LOGS / "spark-test-worker.log"
        self.master = self._start(
            self.master_log,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--webui-port",
            str(free_port()),
        )
        self._wait(self.master_log, "I have been elected leader", self.master)
        self.worker = self._start(
            self.worker_log,
            "org.apache.spark.deploy.worker.Worker",
            self.url,
            "--host",
            "127.0.0.1",
            "--cores",
            "2",
            "--memory",
            "2g",
            "--webui-port",
            str(free_port()),
            "--work-dir",
            str(work_dir),
        )
        self._wait(self.worker_log, "Successfully registered with master", self.worker)

    def _start(self, log_path: Path, main_class: str, *args: str) -> subprocess.Popen:
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                [str(SPARK_HOME / "bin" / "spark-class"), main_class, *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @staticmethod
    def _wait(log_path: Path, text: str, process: subprocess.Popen, timeout_s: float = 120) -> None:
        start = log_path.stat().st_size if log_path.exists() else 0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with open(log_path, "rb") as log:
                log.seek(start)
                if text in log.read().decode(errors="replace"):
                    return
            assert process.poll() is None, f"{log_path.name}: exited with {process.returncode}"
            time.sleep(0.5)
        raise AssertionError(f"{log_path.name}: no {text!r} within {timeout_s}s")

    def stop(self) -> None:
        for process in (self.worker, self.master):
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def cluster(tmp_path) -> Iterator[StandaloneCluster]:
    started = StandaloneCluster(tmp_path / "spark-work")
    yield started
    started.stop()


def write_observations(pipeline: Pipeline) -> int:
    """Labelled observations of adult.test's rows, as predictors would log them; their end offset."""
    spec = default_spec()
    test = load_dataset(spec).evaluations["adult_test"].head(OBSERVATIONS)
    producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap)
    rows = frame_to_records(test, spec)
    for number, (row, label) in enumerate(zip(rows, labels_of(test).tolist(), strict=True)):
        producer.send(pipeline.topic("observations"), encode(Observation(f"obs-{number}", row, int(label)).to_dict()))
    producer.send(pipeline.topic("retrain_topic"), encode(RetrainRequested(OBSERVATIONS, "test").to_dict()))
    producer.flush()
    producer.close()
    return OBSERVATIONS


def retrain(pipeline: Pipeline, *args: str) -> tuple[VersionMetadata, str]:
    """One retrain by a real trainer: the new version's metadata and the trainer's output."""
    trainer = pipeline.start_trainer("--max-evals", str(TRIALS), *args)
    write_observations(pipeline)
    pipeline.wait_for_event("training_completed", 1, 600, service=trainer, version=2)
    trainer.stop()
    return ModelStore(pipeline.root / "models").metadata(2), trainer.log_text()


def test_a_retrain_on_a_standalone_cluster_matches_one_in_process(tmp_path, initialized, cluster):
    spark_log = LOGS / "spark-trainer.log"
    spark_log_before = spark_log.stat().st_size if spark_log.exists() else 0
    on_cluster = Pipeline(tmp_path / "cluster", initialized)
    in_process = Pipeline(tmp_path / "in-process", initialized)
    try:
        on_cluster.env["SPARK_LOCAL_IP"] = "127.0.0.1"
        spark_metadata, spark_output = retrain(on_cluster, "--spark-master", cluster.url, "--parallelism", "2")
        local_metadata, _ = retrain(in_process)
    finally:
        on_cluster.stop_all()
        in_process.stop_all()

    assert spark_metadata.new_rows == local_metadata.new_rows == OBSERVATIONS
    assert spark_metadata.tuning["trials"] == local_metadata.tuning["trials"] == TRIALS
    assert abs(spark_metadata.metrics["holdout_auc"] - local_metadata.metrics["holdout_auc"]) <= 0.003
    assert spark_metadata.timings["tuning"] > 0 and "read_observations" in spark_metadata.timings
    # Spark's own output went to logs/, not to the trainer's terminal.
    assert not [line for line in SPARK_LOG_LINES if line in spark_output]
    assert spark_log.stat().st_size > spark_log_before
    # The trials ran on the worker: it launched an executor for the trainer's application.
    assert list((tmp_path / "spark-work").glob("app-*/*/stderr"))

    mlflow.set_tracking_uri(on_cluster.env["MLFLOW_TRACKING_URI"])
    client = MlflowClient()
    experiment = client.get_experiment_by_name(DEFAULT_EXPERIMENT)
    assert experiment is not None
    [parent] = client.search_runs([experiment.experiment_id], "tags.trigger = 'retrain'")
    assert parent.data.tags["spark_master"] == cluster.url
    assert "seconds_tuning" in parent.data.metrics
    trials = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(trials) == TRIALS
    assert all("cv_logloss" in trial.data.metrics for trial in trials)
