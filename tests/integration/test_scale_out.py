"""Two predictors in one consumer group (one on the local store, one fetching versions from the
MLflow registry) share the load, answer each request once, retrain about every N observations of
the group as a whole, and both swap to each promoted version. Their /metrics endpoints and MLflow
serving runs show what happened."""

import time
from collections import Counter

import mlflow
from mlflow import MlflowClient

from tests.integration.metrics import free_port, scrape
from utils.settings import DEFAULT_EXPERIMENT, DEFAULT_REGISTERED_MODEL


def test_two_predictors_share_the_load_and_both_swap(pipeline):
    ports = [free_port(), free_port()]
    common = ["--retrain-every", "50", "--report-interval", "1"]
    local = pipeline.start_predictor(*common, "--metrics-port", str(ports[0]))
    remote = pipeline.start_predictor(
        *common,
        "--metrics-port",
        str(ports[1]),
        "--model-source",
        "mlflow",
        "--model-store",
        str(pipeline.root / "registry-cache"),
    )
    trainer = pipeline.start_trainer("--promotion-tolerance", "1.0")
    before = [scrape(port).get("pipeline_requests_total", 0) for port in ports]

    summary, _ = pipeline.sample_app("--n", "100", "--rate", "50", "--timeout", "60")
    assert summary["answered"] == 100 and summary["unanswered"] == 0 and summary["repeated_answers"] == 0
    requests = [m for m in pipeline.read_topic("retrain_topic") if m["event"] == "retrain_requested"]
    assert sorted(m["observations_end_offset"] for m in requests) == [50, 100], "N counted over the group"

    [second] = pipeline.wait_for_event("training_completed", 1, 300, service=trainer, version=2, promoted=True)
    # The request at 100 is covered by version 2 (both requests read in one poll) or retrained as 3.
    latest = 2 if second["observations_end_offset"] >= 100 else 3
    pipeline.wait_for_event("training_completed", 1, 300, service=trainer, version=latest, promoted=True)
    for predictor in (local, remote):
        predictor.wait_for_metric("pipeline_model_version", lambda version: version == latest, 120)
    assert (pipeline.root / "registry-cache" / str(latest)).is_dir(), "fetched from MLflow into its own folder"

    # 40 more: 140 observations stay below the next retrain at 150, so the version stays put.
    summary, _ = pipeline.sample_app("--n", "40", "--rate", "40", "--start", "100", "--timeout", "60")
    assert summary["model_versions"] == [latest] and summary["unanswered"] == 0
    counts = Counter(a["request_id"] for a in pipeline.read_topic("predictions"))
    assert len(counts) == 140 and set(counts.values()) == {1}, "each request answered once"

    time.sleep(2)  # one report interval: live gauges and MLflow serving runs are updated
    scraped = [scrape(port) for port in ports]
    served = [s["pipeline_requests_total"] - b for s, b in zip(scraped, before, strict=True)]
    assert sum(served) == 140 and min(served) > 0, f"both predictors served: {served}"
    for samples in scraped:
        assert samples["pipeline_model_version"] == latest
        assert samples["pipeline_model_swaps_total"] >= 1
        assert samples["pipeline_batch_seconds_count"] > 0
    assert any(key.startswith("pipeline_live_accuracy{model_version=1}") for s in scraped for key in s)

    mlflow.set_tracking_uri(pipeline.env["MLFLOW_TRACKING_URI"])
    client = MlflowClient()
    champion = client.get_model_version_by_alias(DEFAULT_REGISTERED_MODEL, "champion")
    assert champion.tags["store_version"] == str(latest)
    experiment = client.get_experiment_by_name(DEFAULT_EXPERIMENT)
    assert experiment is not None
    serving = client.search_runs([experiment.experiment_id], "tags.trigger = 'serving'")
    assert {run.data.tags["store_version"] for run in serving} >= {"1", str(latest)}
    history = client.get_metric_history(serving[0].info.run_id, "live_served")
    assert history and all(point.step == int(point.value) for point in history), "step = requests served"
