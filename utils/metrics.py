"""Prometheus metrics of the predictor and the trainer, served over HTTP on --metrics-port.

Names start with `pipeline_`; monitoring/grafana-dashboard.json uses them and a test checks that
every metric it queries is exported here."""

from __future__ import annotations

import gc
import logging
import time

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

# Every service
READY = Gauge("pipeline_ready", "1 while the service's loop runs (after its set-up, until it stops)")
KAFKA_REACHABLE = Gauge("pipeline_kafka_reachable", "0 while the Kafka cluster does not answer this service, else 1")
SCHEMA_REGISTRY_REACHABLE = Gauge(
    "pipeline_schema_registry_reachable", "0 while the schema registry does not answer this service, else 1"
)
MLFLOW_REACHABLE = Gauge("pipeline_mlflow_reachable", "0 while MLflow does not answer this service, else 1")
GC_PAUSE_SECONDS = Histogram(
    "pipeline_gc_pause_seconds",
    "Pauses of Python's cyclic garbage collector, by generation (every thread of the process waits)",
    ["generation"],
    buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1),
)

# Predictor
REQUESTS = Counter("pipeline_requests", "Records read from app_messages")
PREDICTIONS = Counter("pipeline_predictions", "Predictions answered", ["model_version"])
REQUEST_ERRORS = Counter("pipeline_request_errors", "Requests answered with an error", ["code"])
DEAD_LETTERS = Counter("pipeline_dead_letters", "Records sent to the dead-letter topic", ["code"])
RETRAIN_REQUESTS = Counter("pipeline_retrain_requests", "Retrain requests published")
RETRAIN_TRIGGERS = Counter(
    "pipeline_retrain_triggers",
    "Retrain requests published, by the trigger's reason: count, drift, quality, time",
    ["reason"],
)
MODEL_SWAPS = Counter("pipeline_model_swaps", "Model versions swapped in")
MODELS_REFUSED = Counter("pipeline_models_refused", "Model versions refused by verification")
MODEL_VERSION = Gauge("pipeline_model_version", "Model version now serving")
TRANSACTIONS = Counter("pipeline_transactions", "Exactly-once batches, by outcome: committed or aborted", ["outcome"])
ANSWERS = Counter("pipeline_answers", "Answers sent, by the role of the model that gave them", ["role"])
ROLE_VERSION = Gauge("pipeline_role_version", "Model version in each role (challenger 0: no rollout)", ["role"])
CHALLENGER_LOADED = Gauge(
    "pipeline_challenger_loaded", "Version of the challenger loaded and scoring beside the champion (0: none)"
)
WIRE_REQUESTS = Counter(
    "pipeline_wire_requests", "Requests read in the schema registry's wire format, by schema format", ["format"]
)
PLAIN_FALLBACK_ANSWERS = Counter(
    "pipeline_plain_fallback_answers", "Answers to wire-format requests sent as plain JSON: no answer schema id known"
)
SCHEMA_LOOKUPS = Counter(
    "pipeline_schema_lookups",
    "Schema ids asked of the registry: found, not_found, other_subject, unavailable",
    ["outcome"],
)
BATCH_SIZE = Histogram("pipeline_batch_size", "Records per micro-batch", buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500))
BATCH_SECONDS = Histogram(
    "pipeline_batch_seconds",
    "Time to validate, score, answer and commit one micro-batch",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
STAGE_SECONDS = Counter(
    "pipeline_stage_seconds",
    "Seconds the predictor loop spent per stage: poll, validate, transform, predict, send, ack_wait, commit",
    ["stage"],
)
COMPILED_SCORING = Gauge("pipeline_compiled_scoring", "1 while the serving version scores with its compiled form")
COMPILED_REFUSED = Counter(
    "pipeline_compiled_refused",
    "Compiled forms not used (LightGBM serves): unavailable, build_failed, cache_corrupt, mismatch",
    ["reason"],
)
CONSUMER_LAG = Gauge("pipeline_consumer_lag", "Records in app_messages not yet processed by this predictor")
LIVE_ACCURACY = Gauge("pipeline_live_accuracy", "Accuracy over the last labelled requests", ["model_version"])
LIVE_LOG_LOSS = Gauge("pipeline_live_log_loss", "Log loss over the last labelled requests", ["model_version"])
LIVE_AUC = Gauge("pipeline_live_auc", "AUC over the last labelled requests", ["model_version"])
LIVE_POSITIVE_RATE = Gauge("pipeline_live_positive_rate", "Share of positive predictions", ["model_version"])

# Trainer
RETRAINS_STARTED = Counter("pipeline_retrains_started", "Retrains started")
RETRAINS_BY_REASON = Counter(
    "pipeline_retrains_by_reason",
    "Retrains started, by each reason their coalesced requests gave (one retrain may count under several)",
    ["reason"],
)
RETRAINS_COMPLETED = Counter("pipeline_retrains_completed", "Retrains that published a promoted version")
RETRAINS_REJECTED = Counter("pipeline_retrains_rejected", "Retrains whose model the gate rejected")
RETRAIN_END_OFFSET = Gauge(
    "pipeline_retrain_end_offset", "End offset of the observations the retrain in progress reads (0: none running)"
)
RETRAIN_SECONDS = Histogram(
    "pipeline_retrain_seconds", "Duration of a retrain", buckets=(10, 30, 60, 120, 300, 600, 1800)
)
ROLLOUT_LABELLED = Gauge("pipeline_rollout_labelled", "Labelled requests in the rollout's paired tally")
ROLLOUT_LIVE_AUC = Gauge("pipeline_rollout_live_auc", "AUC of each role on the paired tally", ["role"])
ROLLOUT_AUC_DIFFERENCE = Gauge(
    "pipeline_rollout_auc_difference",
    "Challenger minus champion AUC on the paired tally: estimate and interval bounds (DeLong)",
    ["bound"],
)
ROLLOUT_LOG_LOSS_DIFFERENCE = Gauge(
    "pipeline_rollout_log_loss_difference",
    "Challenger minus champion log loss per request on the paired tally: estimate and the sequential rule's "
    "confidence-sequence bounds",
    ["bound"],
)
ROLLOUT_LOG_LOSS_MARGIN = Gauge(
    "pipeline_rollout_log_loss_margin",
    "The sequential rule's log-loss margin (--shadow-log-loss-margin): the interval's low bound above it rejects, "
    "its high bound below it promotes",
)
ROLLOUT_PAIRS_TO_DECISION = Gauge(
    "pipeline_rollout_pairs_to_decision", "Labelled pairs the last live judgement of a rollout took"
)
ROLLOUT_DECISIONS = Counter("pipeline_rollout_decisions", "Rollouts ended, by outcome", ["decision"])
FEATURE_DRIFT = Gauge("pipeline_feature_drift_psi", "PSI of new observations vs the original data", ["feature"])


class GcPauseTimer:
    """A `gc.callbacks` entry that observes each collection's pause in GC_PAUSE_SECONDS: a full
    collection over a large heap stops serving for as long as it walks."""

    def __init__(self) -> None:
        self._started = 0.0
        self._by_generation = [GC_PAUSE_SECONDS.labels(generation=str(generation)) for generation in range(3)]

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self._by_generation[min(int(info["generation"]), 2)].observe(time.perf_counter() - self._started)
            self._started = 0.0


def time_gc_pauses() -> None:
    """Time every collection of this process from now on (once, however often called)."""
    if not any(isinstance(callback, GcPauseTimer) for callback in gc.callbacks):
        gc.callbacks.append(GcPauseTimer())


def serve_metrics(port: int) -> None:
    """Start the /metrics endpoint; a taken port is logged, not fatal (serving matters more)."""
    if port <= 0:
        return
    try:
        start_http_server(port, addr="127.0.0.1")
        log.info("metrics served url=http://127.0.0.1:%s/metrics", port)
    except OSError as error:
        log.warning("metrics endpoint not started port=%s error=%s", port, error)
