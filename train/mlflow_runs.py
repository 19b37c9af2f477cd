"""What MLflow records of training: one parent run per tuning session, one nested run per trial, the
final model logged and registered as a version of one registered model, the datasets each run saw
(the spec's data files with their SHA-256, the range of the observations log it read: the UI's Dataset column),
the champion alias, rollout decisions and rollbacks."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import lightgbm as lgb
import mlflow
import pandas as pd
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.pandas_dataset import from_pandas

from train.tune import Trial
from utils.data import TARGET
from utils.messages.events import RolloutDecided
from utils.model_store import CHAMPION_ALIAS, MODEL_FILE, REGISTRY_ARTIFACT, ModelStore
from utils.spec import DatasetSpec

log = logging.getLogger(__name__)


def local_artifact_root(tracking_uri: str) -> Path | None:
    """For a local SQLite store, artifacts go in `mlartifacts/` beside the database file."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(urlparse(tracking_uri).path)
    return database.parent / "mlartifacts"


def point_champion_at(tracking_uri: str, registered_model: str, store_version: int) -> None:
    """Move the champion alias to the registry version of a store version, so that
    `models:/<name>@champion` is what serves (called by train/champion.py only)."""
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    matches = client.search_model_versions(f"name='{registered_model}' and tags.store_version='{store_version}'")
    if not matches:
        log.warning("no registry version for store_version=%s: champion alias not moved", store_version)
        return
    current = _alias_version(client, registered_model)
    if current == matches[0].version:
        return
    client.set_registered_model_alias(registered_model, CHAMPION_ALIAS, matches[0].version)
    log.info("champion alias moved registry_version=%s store_version=%s", matches[0].version, store_version)


def record_rollback(tracking_uri: str, experiment: str, previous: int | None, version: int) -> None:
    """A run tagged trigger=rollback, so that the experiment shows who moved serving and when."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    tags = {"trigger": "rollback", "store_version": str(version), "replaces_version": str(previous)}
    with mlflow.start_run(run_name=f"rollback-to-v{version}", tags=tags):
        pass


def record_rollout_decision(
    tracking_uri: str, run_id: str, decided: RolloutDecided, figures: Mapping[str, float]
) -> None:
    """A trial's outcome on the challenger's training run: tags and the live figures. Best effort:
    the store's metadata is the record that serving follows."""
    if not run_id:
        return
    try:
        mlflow.set_tracking_uri(tracking_uri)
        client = mlflow.MlflowClient()
        client.set_tag(run_id, "rollout_promoted", str(decided.promoted))
        client.set_tag(run_id, "rollout_decided_by", decided.decided_by)
        client.set_tag(run_id, "rollout_reason", decided.reason[:5000])
        for name, value in figures.items():
            client.log_metric(run_id, name, value)
    except Exception as error:
        log.warning("rollout decision not recorded in MLflow run_id=%s error=%r", run_id, error)


def _alias_version(client: Any, registered_model: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(registered_model, CHAMPION_ALIAS).version)
    except Exception as error:
        from utils.mlflow_outage import is_outage

        if is_outage(error):
            raise
        return None  # no alias yet


class KafkaOffsets(DatasetSource):
    """A range of one partition of a Kafka topic: `[start_offset, end_offset)`."""

    def __init__(self, topic: str, partition: int, start_offset: int, end_offset: int):
        self.topic, self.partition = topic, partition
        self.start_offset, self.end_offset = start_offset, end_offset

    @staticmethod
    def _get_source_type() -> str:
        return "kafka"

    def load(self, **kwargs: Any) -> Any:
        raise NotImplementedError("read the range with train/observations.py")

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False  # never built from a string: only this project writes it

    @classmethod
    def _resolve(cls, raw_source: Any) -> KafkaOffsets:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "start_offset": self.start_offset,
            "end_offset": self.end_offset,
        }

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> KafkaOffsets:
        return cls(
            str(source_dict["topic"]),
            int(source_dict["partition"]),
            int(source_dict["start_offset"]),
            int(source_dict["end_offset"]),
        )


@dataclass(frozen=True)
class TrainingInput:
    """One dataset a run trained on. `source` is a file path or a KafkaOffsets; `digest` names the
    exact content (None: MLflow computes one from the frame)."""

    name: str
    frame: pd.DataFrame
    source: str | KafkaOffsets
    digest: str | None = None


# MLflow stores a dataset digest in 36 characters at most.
DIGEST_LENGTH = 32


def log_training_inputs(inputs: Sequence[TrainingInput]) -> None:
    """Log each input of the active run with context "training"."""
    for item in inputs:
        digest = item.digest[:DIGEST_LENGTH] if item.digest else None
        with warnings.catch_warnings():
            # Advice for model signatures and the choice between two identical local-file sources:
            # neither applies to a dataset record, and they would print on every retrain.
            warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column", category=UserWarning)
            warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways", category=UserWarning)
            dataset = from_pandas(item.frame, source=item.source, targets=TARGET, name=item.name, digest=digest)
            mlflow.log_input(dataset, context="training")


def data_input(spec: DatasetSpec, frame: pd.DataFrame) -> TrainingInput:
    """The spec's training file(s), named by the SHA-256 they are verified against."""
    first = spec.files[0]
    name = ", ".join(Path(item.path).name.removesuffix(".gz") for item in spec.files)
    return TrainingInput(name, frame, str(spec.path_of(first)), first.sha256 or None)


def observations_input(frame: pd.DataFrame, topic: str, start_offset: int, end_offset: int) -> TrainingInput:
    """The labelled observations a retrain read: partition 0 of `topic`, `[start_offset, end_offset)`."""
    return TrainingInput(
        f"observations[{start_offset}:{end_offset})", frame, KafkaOffsets(topic, 0, start_offset, end_offset)
    )


class Tracker:
    """Wraps the fluent MLflow API for one experiment and one registered model."""

    def __init__(self, tracking_uri: str, experiment: str, registered_model: str):
        import mlflow.lightgbm  # noqa: F401  (registers the flavor used in log_model)

        self.mlflow = mlflow
        self.registered_model = registered_model
        mlflow.set_tracking_uri(tracking_uri)
        if mlflow.get_experiment_by_name(experiment) is None:
            artifact_root = local_artifact_root(tracking_uri)
            mlflow.create_experiment(experiment, artifact_location=artifact_root.as_uri() if artifact_root else None)
        experiment_id = mlflow.set_experiment(experiment).experiment_id
        # The MLflow UI then opens the experiment on its training runs (not on GenAI traces).
        mlflow.MlflowClient().set_experiment_tag(experiment_id, "mlflow.experimentKind", "custom_model_development")

    def log_inputs(self, inputs: Sequence[TrainingInput]) -> None:
        """The datasets the active run trains on."""
        log_training_inputs(inputs)

    @contextmanager
    def session(self, run_name: str, tags: Mapping[str, Any]) -> Iterator[str]:
        """A parent run for one tuning session; yields its run id."""
        with self.mlflow.start_run(run_name=run_name, tags={k: str(v) for k, v in tags.items()}) as run:
            yield run.info.run_id

    def log_trial(self, trial: Trial) -> None:
        with self.mlflow.start_run(run_name=f"trial-{trial.number:03d}", nested=True):
            self.mlflow.log_params(trial.params)
            self.mlflow.log_metrics(
                {"cv_logloss": trial.cv_logloss, "best_iteration": trial.best_iteration, "seconds": trial.seconds}
            )

    def log_outcome(
        self,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        booster: lgb.Booster,
        version_dir: Path,
        tags: Mapping[str, Any],
    ) -> str:
        """Best params, holdout metrics, the model (registered) and the store's version folder.
        Returns the registry's version number."""
        mlflow = self.mlflow
        mlflow.log_params({f"best_{name}": value for name, value in params.items()})
        mlflow.log_metrics(dict(metrics))
        mlflow.set_tags({k: str(v) for k, v in tags.items()})
        mlflow.log_artifacts(str(version_dir), artifact_path=REGISTRY_ARTIFACT)
        info = mlflow.lightgbm.log_model(booster, name="model", pip_requirements=[f"lightgbm=={lgb.__version__}"])
        # Registered with its tags in one request: a registry version always names its store version,
        # so ensure_recorded() can tell whether an interrupted retrain got this far.
        registered = mlflow.register_model(
            info.model_uri, self.registered_model, tags={k: str(v) for k, v in tags.items()}
        )
        log.info("mlflow model registered name=%s registry_version=%s", self.registered_model, registered.version)
        return str(registered.version)

    def is_registered(self, store_version: int) -> bool:
        """True if the registry has a version for this store version."""
        client = self.mlflow.MlflowClient()
        found = client.search_model_versions(
            f"name='{self.registered_model}' and tags.store_version='{int(store_version)}'"
        )
        return bool(found)

    def ensure_recorded(self, store: ModelStore, version: int) -> bool:
        """Log and register a published store version in its own training run, unless the registry
        has it already: a retrain that an MLflow outage interrupted after publishing is completed,
        once. True if it had to."""
        if self.is_registered(version):
            return False
        metadata = store.metadata(version)
        files = store.read_verified(version)
        booster = lgb.Booster(model_str=files[MODEL_FILE].decode("utf-8"))
        with self.mlflow.start_run(run_id=metadata.mlflow_run_id):
            self.log_outcome(
                metadata.params,
                {**metadata.metrics, **metadata.extra_metrics},
                booster,
                store.path_of(version),
                {"store_version": version, **metadata.tracking_tags},
            )
        log.info("interrupted version recorded in MLflow version=%s run_id=%s", version, metadata.mlflow_run_id)
        return True
