"""What each training run saw, logged as MLflow datasets (the UI's Dataset column): adult.data with
its SHA-256, and the range of the observations log it read. Imported by the Tracker only when it
logs, so services that never train do not load MLflow."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.pandas_dataset import from_pandas


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
            dataset = from_pandas(item.frame, source=item.source, targets="label", name=item.name, digest=digest)
            mlflow.log_input(dataset, context="training")


def adult_data_input(frame: pd.DataFrame) -> TrainingInput:
    """The census training file, named by the SHA-256 it is verified against (data/SHA256SUMS)."""
    from utils.data import DATA_DIR, expected_digests

    return TrainingInput("adult.data", frame, str(DATA_DIR / "adult.data"), expected_digests()["adult.data"])


def observations_input(frame: pd.DataFrame, topic: str, start_offset: int, end_offset: int) -> TrainingInput:
    """The labelled observations a retrain read: partition 0 of `topic`, `[start_offset, end_offset)`."""
    return TrainingInput(
        f"observations[{start_offset}:{end_offset})", frame, KafkaOffsets(topic, 0, start_offset, end_offset)
    )
