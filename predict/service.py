"""The predictor: consume app events, score them in micro-batches, answer, keep labelled
observations, ask for retraining (every N observations, on drift, on a quality drop, on time),
hot-swap promoted models.

This module builds the serving parts and hands them to one of two loops, by processing guarantee:
`predict/at_least_once.py` (pipelined, the default) or `predict/exactly_once.py` (a transaction per
batch). Both decide each batch with the pure functions of `predict/batch.py`.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
from collections.abc import Callable

from predict.at_least_once import AtLeastOnceLoop
from predict.compiled_switch import CompiledSwitch
from predict.exactly_once import ExactlyOnceLoop
from predict.hot_swap import ModelSwapper
from predict.loop import Serving, ServingLoop
from predict.model_source import MlflowModelSource
from predict.reporting import ServingReporter
from predict.schema_cache import SchemaCache
from predict.telemetry import Telemetry
from utils.cli import EXIT_CONFIGURATION
from utils.compiled_cache import CompiledCache
from utils.event_history import recent_events, rollout_in_progress
from utils.kafka.clients import create_consumer, create_producer, create_transactional_producer
from utils.kafka.interface import Consumer, ConsumerOptions, KafkaError, Producer, ProducerOptions
from utils.kafka.reading import assign_from_end
from utils.kafka.topics import wait_for_broker
from utils.messages.codec import MessageError
from utils.metrics import serve_metrics, time_gc_pauses
from utils.mlflow_outage import call_when_up
from utils.model_store import ModelStore, ModelStoreError
from utils.schema_registry.client import RegistryClient
from utils.schema_registry.schemas import subjects
from utils.scoring import Scorer, load_scorer
from utils.settings import PredictorSettings

log = logging.getLogger(__name__)

REGISTRY_START_TIMEOUT_S = 10.0  # the schemas' look-up at start, off the serving path


def run(settings: PredictorSettings, stop: threading.Event) -> int:
    """Serve until stopped; 2 if there is no model that can serve."""
    common, topics = settings.common, settings.common.topics
    serve_metrics(settings.metrics_port)  # first: the waits below show on it
    time_gc_pauses()
    store = ModelStore(common.model_store)
    # With --model-source mlflow the store is only a local cache of registry downloads.
    source = (
        MlflowModelSource(common.tracking_uri, settings.registered_model, store)
        if settings.model_source == "mlflow"
        else None
    )
    instance = f"predictor-{socket.gethostname()}-{os.getpid()}"
    scorer = serving_version(settings, store, source, stop)
    if scorer is None:
        return EXIT_CONFIGURATION
    wait_for_broker(common.kafka, topics, stop)
    transactional_id = settings.transactional_id
    transactional = None
    if transactional_id is not None:
        options = ProducerOptions(instance, transactional_id=transactional_id)
        transactional = create_transactional_producer(common.kafka, options)
    producer: Producer = transactional or create_producer(common.kafka, ProducerOptions(instance))
    consumer: Consumer = create_consumer(
        common.kafka,
        ConsumerOptions(
            instance, settings.group_id, max_poll_records=settings.max_batch, read_committed=transactional is not None
        ),
    )
    model_events = create_consumer(common.kafka, ConsumerOptions(f"{instance}-events", read_committed=True))
    swapper = ModelSwapper(
        store,
        scorer,
        fetch=source.fetch if source else None,
        tracking_uri=common.tracking_uri,
        upgrade=compiled_switch(settings, store),
        niceness=settings.background.background_niceness,
    )
    join_rollout_in_progress(settings, store, source is not None, swapper, instance)
    reporter = ServingReporter(
        common.tracking_uri or None, settings.experiment, instance, settings.live_window, settings.report_interval_s
    )
    telemetry = Telemetry(reporter, swapper, refusal_is_error=settings.scorer == "compiled")
    telemetry.started()
    reporter.start()
    schemas = schema_cache(settings, store, scorer.version)
    serving = Serving(settings, instance, consumer, producer, model_events, swapper, telemetry, schemas, stop)
    loop: ServingLoop
    try:
        assign_from_end(model_events, topics.model_events)
        if transactional is not None:
            loop = ExactlyOnceLoop(serving, transactional)
            consumer.subscribe(topics.app_messages)  # a transaction per batch leaves nothing to commit
        else:
            loop = at_least_once = AtLeastOnceLoop(serving)
            consumer.subscribe(topics.app_messages, on_revoke=at_least_once.before_revocation)
        # Exempt everything loaded so far (MLflow, pandas, the model: ~200,000 objects) from the
        # collector: a full collection over them stops the serving loop for over 100 ms.
        gc.collect()
        gc.freeze()
        log.info(
            "predictor ready model_version=%s topic=%s group=%s retrain_every=%s retrain_on_drift=%s "
            "retrain_on_quality_drop=%s retrain_interval_s=%s guarantee=%s",
            scorer.version,
            topics.app_messages,
            settings.group_id,
            settings.retrain_every,
            settings.retrain_on_drift,
            settings.retrain_on_quality_drop,
            settings.retrain_interval_s,
            settings.processing_guarantee,
        )
        loop.serve()
    finally:
        reporter.close()
        swapper.close()
        consumer.close()
        model_events.close()
        producer.close(timeout_s=10)
        log.info("predictor stopped")
    return 0


def serving_version(
    settings: PredictorSettings, store: ModelStore, source: MlflowModelSource | None, stop: threading.Event
) -> Scorer | None:
    """The version to serve at start (the store's CURRENT, or the registry's champion), loaded and
    verified; None, said why, if there is none that can serve."""
    tracking_uri = settings.common.tracking_uri
    if source is not None:
        try:
            champion = call_when_up(source.champion_version, tracking_uri, stop)
            call_when_up(lambda: source.fetch(champion), tracking_uri, stop)
            version: int | None = champion
        except ModelStoreError as error:
            log.error("no model to serve from MLflow: %s", error)
            return None
    else:
        version = store.current_version()
    if version is None:
        log.error("no model version in %s: run `python initialize.py` first", store.root)
        return None
    try:
        return load_scorer(store, version)
    except ModelStoreError as error:
        log.error("the current model version cannot serve: %s (roll back to another version)", error)
        return None


def schema_cache(settings: PredictorSettings, store: ModelStore, version: int) -> SchemaCache:
    """What the predictor reads wire-format requests with: the registry (none without a URL: such
    requests are answered `schema_unavailable`), and the answer ids the serving version recorded."""
    url = settings.common.schema_registry_url
    request_subject, answer_subject = subjects(settings.common.topics)
    client = RegistryClient(url, settings.common.schema_registry_timeout_s) if url else None
    cache = SchemaCache(client, request_subject, answer_subject)
    try:
        recorded = store.metadata(version).schemas
    except ModelStoreError:
        recorded = None
    if recorded is not None and recorded.answer_subject == answer_subject and recorded.format in ("json", "avro"):
        cache.seed_answer_ids({recorded.format: recorded.answer_id})  # type: ignore[dict-item]
    if url:
        log.info("schema registry url=%s requests=%s answers=%s", url, request_subject, answer_subject)
        cache.look_up_at_start(REGISTRY_START_TIMEOUT_S)
    return cache


def compiled_switch(settings: PredictorSettings, store: ModelStore) -> Callable[[Scorer], Scorer] | None:
    """How a serving version moves to its compiled form, unless `--scorer lightgbm`."""
    if settings.scorer == "lightgbm":
        return None
    return CompiledSwitch(CompiledCache.in_store(store.root), niceness=settings.background.background_niceness).of


def join_rollout_in_progress(
    settings: PredictorSettings, store: ModelStore, from_registry: bool, swapper: ModelSwapper, instance: str
) -> None:
    """A predictor that starts during a rollout scores its challenger too: the store says which,
    or, for a registry cache (--model-source mlflow), the latest model events."""
    try:
        if not from_registry:
            rollout = store.challenger()
        else:
            topic = settings.common.topics.model_events
            rollout = rollout_in_progress(recent_events(settings.common.kafka, topic, f"{instance}-history"))
        if rollout is not None:
            swapper.start_rollout(rollout)
    except (ModelStoreError, MessageError, KafkaError) as error:
        log.error("rollout in progress not joined error=%r", error)
