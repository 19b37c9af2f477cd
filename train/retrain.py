"""One retrain: the serving version's spec's data plus every labelled observation before the
requested offset that fits its form (the newest `--max-observations` of them, once per request id),
tuned from the champion's parameters, gated against the champion on the fixed holdout, published
with the same spec (a retrain never changes the form), then finished by `train/publish.py`."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any

import pandas as pd

from train.mlflow_runs import Tracker, data_input, observations_input
from train.observations import observations_frame, read_observations
from train.pipeline import TrainedVersion, timed, train_version
from train.publish import Publisher
from train.requests import RetrainTarget
from train.rollout.decision import holdout_gate
from train.schema_registration import register_when_up
from utils import drift, metrics
from utils.data import Dataset, frame_to_records, load_dataset
from utils.model_store import ModelStore, SchemaIds, TrainedUnder, VersionMetadata
from utils.schema_registry.client import RegistryClient, SchemaRefused
from utils.scoring import Scorer, load_scorer
from utils.settings import SchemaFormat, TrainerSettings
from utils.spec import DatasetSpec, to_toml

log = logging.getLogger(__name__)

MIN_DRIFT_ROWS = 200  # PSI on fewer rows is mostly noise


class Retrainer:
    def __init__(
        self,
        settings: TrainerSettings,
        store: ModelStore,
        tracker: Tracker,
        publisher: Publisher,
        stop: threading.Event,
        spark: Any = None,
    ):
        self.settings = settings
        self.store = store
        self.tracker = tracker
        self.publisher = publisher
        self.stop = stop
        self.spark = spark  # a Spark session with --spark-master: the trials run on its executors
        self._datasets: dict[str, Dataset] = {}

    def dataset_of(self, spec: DatasetSpec) -> Dataset:
        """The spec's data, read (and its digests checked) once per spec."""
        key = hashlib.sha256(to_toml(spec.for_store()).encode()).hexdigest()
        if key not in self._datasets:
            self._datasets = {key: load_dataset(spec)}
        return self._datasets[key]

    def retrain(self, target: RetrainTarget) -> None:
        """Retrain on the observations before the target's end offset, unless the newest version
        covers them or every request is about a version a retrain has replaced already."""
        latest = self.store.require(self.store.latest_version())
        fresh = target.without_stale(latest)
        if fresh is None:
            log.info(
                "retrain requests stale, a newer version exists reasons=%s coalesced_requests=%s latest_version=%s",
                ",".join(target.reasons),
                target.coalesced,
                latest,
            )
            self.publisher.finish_latest()
            return
        end_offset, coalesced = fresh.observations_end_offset, target.coalesced
        if self.store.metadata(latest).observations_end_offset >= end_offset:
            log.info(
                "retrain already covered end_offset=%s by_version=%s reasons=%s",
                end_offset,
                latest,
                ",".join(fresh.reasons),
            )
            self.publisher.finish_latest()
            return
        champion = self.store.require(self.store.current_version())
        champion_metadata = self.store.metadata(champion)
        scorer = load_scorer(self.store, champion)
        spec = scorer.spec
        topic = self.settings.common.topics.observations
        timings: dict[str, float] = {}
        with timed(timings, "read_data"):
            dataset = self.dataset_of(spec)
        with timed(timings, "read_observations"):
            observations = read_observations(
                self.settings.common.kafka, topic, end_offset, self.settings.max_observations, scorer.form
            )
        with timed(timings, "observations_frame"):
            new_rows = observations_frame(observations, spec)
            training = pd.concat([dataset.training, new_rows], ignore_index=True)
        log.info(
            "retrain started end_offset=%s coalesced_requests=%s reasons=%s new_rows=%s training_rows=%s champion=%s",
            end_offset,
            coalesced,
            ",".join(fresh.reasons),
            len(new_rows),
            len(training),
            champion,
        )
        with timed(timings, "drift"):
            drift_metrics = self.measure_drift(scorer, dataset.training, new_rows)
        try:
            schemas = self.register_schemas(spec, champion_metadata)
        except SchemaRefused as error:
            log.error(
                "retrain not published: the schema registry refuses the serving spec's schemas end_offset=%s error=%s",
                end_offset,
                error,
            )
            metrics.RETRAINS_REJECTED.inc()
            return
        metrics.RETRAINS_STARTED.inc()
        for reason in fresh.reasons:
            metrics.RETRAINS_BY_REASON.labels(reason=reason).inc()
        metrics.RETRAIN_END_OFFSET.set(end_offset)
        started = time.monotonic()
        try:
            trained = self._train(
                dataset,
                training,
                new_rows,
                fresh,
                champion,
                champion_metadata,
                drift_metrics,
                timings,
                schemas,
            )
        finally:
            metrics.RETRAIN_END_OFFSET.set(0)
        metrics.RETRAIN_SECONDS.observe(time.monotonic() - started)
        (metrics.RETRAINS_COMPLETED if trained.promoted else metrics.RETRAINS_REJECTED).inc()
        self.publisher.finish_latest()
        self.store.prune(self.settings.keep_versions)

    def _train(
        self,
        dataset: Dataset,
        training: pd.DataFrame,
        new_rows: pd.DataFrame,
        target: RetrainTarget,
        champion: int,
        champion_metadata: VersionMetadata,
        drift_metrics: dict[str, float],
        timings: dict[str, float],
        schemas: SchemaIds | None,
    ) -> TrainedVersion:
        """Tune from the champion's parameters, gate against it on the holdout, publish."""
        topic = self.settings.common.topics.observations
        rollout = self.settings.rollout
        end_offset = target.observations_end_offset
        return train_version(
            dataset.spec,
            training,
            dataset.holdout,
            self.settings.tuning,
            self.store,
            self.tracker,
            trigger="retrain",
            lineage=VersionMetadata(
                rollout=TrainedUnder(rollout.mode, rollout.canary_fraction),
                observations_end_offset=end_offset,
                new_rows=len(new_rows),
                replaces_version=champion,
                replaces_mlflow_run_id=champion_metadata.mlflow_run_id,
                schemas=schemas,
                retrain_causes=target.causes(),
            ),
            warm_start=champion_metadata.params or None,
            should_stop=self.stop.is_set,
            promotion_gate=holdout_gate(champion_metadata.metrics, self.settings.promotion_tolerance),
            extra_metrics=drift_metrics,
            inputs=[
                data_input(dataset.spec, dataset.training),
                observations_input(new_rows, topic, max(0, end_offset - self.settings.max_observations), end_offset),
            ],
            spark=self.spark,
            timings=timings,
        )

    def register_schemas(self, spec: DatasetSpec, champion: VersionMetadata) -> SchemaIds | None:
        """With a schema registry: the new version's schemas, in the champion's format (JSON Schema
        for a champion registered without one), registered before it is trained."""
        url = self.settings.common.schema_registry_url
        if url is None:
            return None
        schema_format: SchemaFormat = (
            "avro" if champion.schemas is not None and champion.schemas.format == "avro" else "json"
        )
        return register_when_up(
            RegistryClient(url, self.settings.common.schema_registry_timeout_s),
            spec,
            schema_format,
            self.settings.common.topics,
            self.stop,
        )

    def measure_drift(self, scorer: Scorer, reference: pd.DataFrame, new_rows: pd.DataFrame) -> dict[str, float]:
        """PSI per feature of the new observations against the data file, and the shift of the
        serving model's predictions between the two; logged to MLflow with the retrain, warned about
        above the threshold."""
        if len(new_rows) < MIN_DRIFT_ROWS:
            log.info("drift not measured new_rows=%s minimum=%s", len(new_rows), MIN_DRIFT_ROWS)
            return {}
        spec = scorer.spec
        features = drift.feature_drift(spec, reference, new_rows)
        for name, value in features.items():
            metrics.FEATURE_DRIFT.labels(feature=name).set(value)
        shift = drift.prediction_shift(
            scorer.predict_proba(frame_to_records(reference, spec)),
            scorer.predict_proba(frame_to_records(new_rows, spec)),
        )
        moved = drift.drifted(features)
        if moved or shift["probability_psi"] > drift.PSI_WARNING:
            log.warning(
                "drift above threshold features=%s prediction_psi=%.3f threshold=%s",
                ",".join(moved) or "-",
                shift["probability_psi"],
                drift.PSI_WARNING,
            )
        return {
            **{f"drift_psi_{name}": value for name, value in features.items()},
            **{f"drift_{name}": value for name, value in shift.items()},
        }
