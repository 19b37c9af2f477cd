"""Live quality per model version, published in the background: Prometheus gauges and, in MLflow,
one "serving" run per model version whose metrics are logged over time (step = requests served)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from predict.live_quality import LiveQuality
from utils import metrics

log = logging.getLogger(__name__)

GAUGES = {
    "accuracy": metrics.LIVE_ACCURACY,
    "log_loss": metrics.LIVE_LOG_LOSS,
    "auc": metrics.LIVE_AUC,
    "positive_rate": metrics.LIVE_POSITIVE_RATE,
}


class ServingReporter:
    def __init__(self, tracking_uri: str | None, experiment: str, instance: str, window: int, interval_s: float):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.instance = instance
        self.window = window
        self.interval_s = interval_s
        self.quality: dict[int, LiveQuality] = {}
        self._runs: dict[int, str] = {}
        self._logged_at: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._report_forever, name="serving-report", daemon=True)
        self._client: Any = None  # an MlflowClient once connected; mlflow is imported lazily

    def start(self) -> None:
        if self.tracking_uri:
            # Importing MLflow and opening its store (a first use even migrates the database) take
            # seconds of CPU: pay them before serving, not in the middle of it.
            try:
                self._connect()
            except Exception as error:  # tracking is best effort: serving must go on
                log.warning("MLflow not reachable, serving runs disabled error=%r", error)
                self.tracking_uri = None
        self._thread.start()

    def _connect(self) -> None:
        import mlflow

        assert self.tracking_uri is not None
        mlflow.set_tracking_uri(self.tracking_uri)
        client = mlflow.MlflowClient()
        experiment = client.get_experiment_by_name(self.experiment)
        self._experiment_id = experiment.experiment_id if experiment else client.create_experiment(self.experiment)
        self._client = client

    def for_version(self, version: int) -> LiveQuality:
        if version not in self.quality:
            self.quality[version] = LiveQuality(self.window)
        return self.quality[version]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.report()  # the last figures
        if self._client is not None:
            for run_id in self._runs.values():
                self._client.set_terminated(run_id)

    def _report_forever(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.report()

    def report(self) -> None:
        for version, quality in list(self.quality.items()):
            snapshot = quality.snapshot()
            for name, gauge in GAUGES.items():
                if name in snapshot:
                    gauge.labels(model_version=str(version)).set(snapshot[name])
            if self.tracking_uri and snapshot["served"] > self._logged_at.get(version, 0):
                try:
                    self._log_to_mlflow(version, snapshot)
                    self._logged_at[version] = snapshot["served"]
                except Exception as error:  # tracking is best effort: serving must go on
                    log.warning("serving metrics not logged to MLflow version=%s error=%r", version, error)

    def _log_to_mlflow(self, version: int, snapshot: dict[str, float]) -> None:
        if version not in self._runs:
            run = self._client.create_run(
                self._experiment_id,
                run_name=f"serving-v{version}-{self.instance}",
                tags={"trigger": "serving", "store_version": str(version), "instance": self.instance},
            )
            self._runs[version] = run.info.run_id
        from mlflow.entities import Metric

        # One call, so one transaction in the store: five log_metric calls took 23-30 ms of this
        # background thread's CPU against 7-9 ms, time the serving thread waits for the GIL.
        step, now_ms = int(snapshot["served"]), int(time.time() * 1000)
        figures = [Metric(f"live_{name}", value, now_ms, step) for name, value in snapshot.items()]
        self._client.log_batch(self._runs[version], metrics=figures)
