"""Live quality published: Prometheus gauges always, one MLflow serving run per version when a
tracking store is given, best effort."""

import numpy as np
from mlflow import MlflowClient

from predict.reporting import ServingReporter
from utils import metrics


def gauge(name: str, version: int) -> float:
    return metrics.LIVE_ACCURACY.labels(model_version=str(version))._value.get() if name == "accuracy" else 0.0


def test_the_gauges_follow_each_version_without_a_tracking_store():
    reporter = ServingReporter(None, "unused", "test", window=10, interval_s=3600)
    reporter.for_version(71).add(np.array([0.9, 0.1]), [1, 1])
    reporter.for_version(72).add(np.array([0.9]), [1])
    reporter.report()
    assert gauge("accuracy", 71) == 0.5 and gauge("accuracy", 72) == 1.0


def test_each_version_gets_one_serving_run_whose_metrics_grow_with_the_requests(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    reporter = ServingReporter(uri, "serving-test", "instance-1", window=10, interval_s=3600)
    reporter.start()
    quality = reporter.for_version(3)
    quality.add(np.array([0.9, 0.2]), [1, 0])
    reporter.report()
    reporter.report()  # nothing new: nothing logged again
    quality.add(np.array([0.7]), [0])
    reporter.close()  # reports the last figures and ends the run
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("serving-test")
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id])
    assert run.data.tags["store_version"] == "3" and run.data.tags["trigger"] == "serving"
    assert run.info.status == "FINISHED"
    assert set(run.data.metrics) == {
        f"live_{name}" for name in ("served", "labelled", "positive_rate", "accuracy", "log_loss", "auc")
    }
    served = client.get_metric_history(run.info.run_id, "live_served")
    assert [(m.step, m.value) for m in served] == [(2, 2.0), (3, 3.0)]


def test_an_unreachable_tracking_store_leaves_the_gauges_working(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # as utils/mlflow_outage.py sets it
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    reporter = ServingReporter("http://127.0.0.1:9/unreachable", "x", "test", window=10, interval_s=3600)
    reporter.start()  # logs a warning and goes on without MLflow
    reporter.for_version(74).add(np.array([0.9]), [1])
    reporter.report()
    reporter.close()
    assert reporter.tracking_uri is None and gauge("accuracy", 74) == 1.0
