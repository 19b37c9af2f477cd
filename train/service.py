"""The trainer: consume retrain requests, retrain (train/retrain.py), finish each new version
(train/publish.py), and watch the rollout in progress (train/rollout/watch.py).

Requests that arrive during a retrain wait in Kafka and are coalesced at the next poll: one retrain
covers them all. A request's offset is committed only after its "training completed" is acknowledged,
and every step after training is idempotent (the decision lives in the version's metadata), so a
trainer killed at any point redoes or finishes the same work on restart, without version gaps.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from train.announce import Announcer
from train.champion import Registry
from train.compile_ahead import CompileAhead
from train.mlflow_runs import Tracker
from train.publish import Publisher
from train.requests import retrain_target
from train.retrain import Retrainer
from train.rollout.trial import Trials
from train.rollout.watch import RolloutWatch
from train.spark import spark_session
from utils.kafka.clients import create_consumer, create_producer
from utils.kafka.health import serve_until_stopped
from utils.kafka.interface import (
    Consumer,
    ConsumerOptions,
    FatalKafkaError,
    KafkaError,
    Partition,
    Producer,
    ProducerOptions,
    Record,
)
from utils.kafka.offsets import commit_offsets
from utils.kafka.topics import wait_for_broker
from utils.metrics import serve_metrics, time_gc_pauses
from utils.mlflow_outage import TrackingUnavailable, call_when_up, is_outage, wait_for_tracking
from utils.model_store import ModelStore
from utils.settings import TrainerSettings
from utils.shutdown import StopRequested

log = logging.getLogger(__name__)

REWIND_RETRY_S = 1.0

POLL_TIMEOUT_S = 1.0


def run(settings: TrainerSettings, stop: threading.Event) -> int:
    """Serve until stopped; 2 if there is no model version to start from."""
    store = ModelStore(settings.common.model_store)
    if store.current_version() is None:
        log.error("no model version in %s: run `python initialize.py` first", store.root)
        return 2
    common, topics = settings.common, settings.common.topics
    serve_metrics(settings.metrics_port)  # first: the waits below show on it
    time_gc_pauses()
    wait_for_broker(common.kafka, topics, stop, (topics.retrain, topics.observations, topics.model_events))
    instance = f"trainer-{socket.gethostname()}-{os.getpid()}"
    registry = Registry(common.tracking_uri, settings.registered_model)
    tracker = call_when_up(
        lambda: Tracker(common.tracking_uri, settings.experiment, settings.registered_model), common.tracking_uri, stop
    )
    producer: Producer = create_producer(common.kafka, ProducerOptions(instance))
    # A retrain may outlast the default 5-minute poll interval; the group must not evict us.
    consumer: Consumer = create_consumer(
        common.kafka,
        ConsumerOptions(
            instance,
            settings.group_id,
            max_poll_records=100,
            max_poll_interval_ms=3_600_000,
            read_committed=True,  # retrain requests of exactly-once predictors count once committed
        ),
    )
    trials = Trials(store, registry, Announcer(producer, topics.model_events, stop))
    compile_ahead = CompileAhead(store.root, settings.background.background_niceness)
    publisher = Publisher(store, tracker, trials, compile_ahead, common.kafka, topics, instance, stop)
    watch = RolloutWatch(trials, settings.rollout, common.kafka, topics.observations, instance)
    try:
        consumer.subscribe(topics.retrain)
        store.remove_incomplete()
        publisher.finish_latest()
        with spark_session(settings.tuning.spark, "trainer") as spark:
            retrainer = Retrainer(settings, store, tracker, publisher, stop, spark)
            log.info(
                "trainer ready topic=%s group=%s hyper=%s max_evals=%s spark_master=%s",
                topics.retrain,
                settings.group_id,
                settings.tuning.hyper,
                settings.tuning.max_evals,
                settings.tuning.spark.master or "-",
            )
            TrainerLoop(settings, consumer, retrainer, watch, compile_ahead, stop).serve()
    finally:
        watch.close()
        consumer.close()
        producer.close(timeout_s=10)
        log.info("trainer stopped")
    return 0


class TrainerLoop:
    """Poll retrain requests and retrain; between polls, look at the rollout in progress."""

    def __init__(
        self,
        settings: TrainerSettings,
        consumer: Consumer,
        retrainer: Retrainer,
        watch: RolloutWatch,
        compile_ahead: CompileAhead,
        stop: threading.Event,
    ):
        self.settings = settings
        self.consumer = consumer
        self.retrainer = retrainer
        self.watch = watch
        self.compile_ahead = compile_ahead
        self.stop = stop
        self._next_judgement = 0.0

    def serve(self) -> None:
        serve_until_stopped(self.settings.common.kafka.bootstrap_servers, self.stop, self.serve_once)

    def serve_once(self) -> bool:
        """Handle one poll's requests; False once the service must stop."""
        if time.monotonic() >= self._next_judgement:
            self._watch_rollout()
            self._next_judgement = time.monotonic() + self.settings.rollout.judge_interval_s
        records = self.consumer.poll(POLL_TIMEOUT_S)
        if not records:
            return True
        target = retrain_target(records)
        try:
            if target is not None:
                self.retrainer.retrain(target)
            self.consumer.commit(commit_offsets(records))
        except StopRequested:
            log.info("retrain abandoned: stopping; the request stays uncommitted and will be redone")
            return False
        except KafkaError as error:
            if isinstance(error, FatalKafkaError):
                raise
            log.warning("retrain not acknowledged, will replay error=%r", error)
            self._rewind(records)
        except Exception as error:
            if not (isinstance(error, TrackingUnavailable) or is_outage(error)):
                raise
            log.warning("retrain interrupted: MLflow unreachable; the request stays uncommitted and is redone")
            self._rewind(records)
            wait_for_tracking(self.settings.common.tracking_uri, self.stop)
        return True

    def _watch_rollout(self) -> None:
        decided = call_when_up(self.watch.check, self.settings.common.tracking_uri, self.stop)
        if decided is not None and decided.promoted:
            self.compile_ahead.start(decided.version)

    def _rewind(self, records: list[Record]) -> None:
        """Read these records' partitions again from their committed offsets; during an outage the
        committed offsets cannot be read either, so this waits for the broker (or a stop)."""
        partitions = {Partition(r.topic, r.partition) for r in records}
        while True:
            try:
                for partition in partitions:
                    committed = self.consumer.committed(partition)
                    self.consumer.seek(partition, committed if committed is not None else 0)
                return
            except KafkaError as error:
                if isinstance(error, FatalKafkaError):
                    raise
                if self.stop.is_set():
                    return  # uncommitted: read again at the next start
                log.warning("committed offsets unreadable, retrying the rewind error=%r", error)
                self.stop.wait(REWIND_RETRY_S)
