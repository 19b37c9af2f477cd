"""Which version serves: the only writer of the store's CURRENT pointer and HISTORY, and of the
MLflow registry's `champion` alias. The trainer, initialize, a rollout's end, promote.py and
rollback.py all make a version current through `make_current`."""

from __future__ import annotations

from dataclasses import dataclass

from train.mlflow_runs import point_champion_at
from utils.model_store import ModelStore


@dataclass(frozen=True)
class Registry:
    """Where promotions are recorded in MLflow."""

    tracking_uri: str
    registered_model: str


def make_current(store: ModelStore, version: int, registry: Registry | None) -> None:
    """Serve `version`: the store's CURRENT pointer first (what predictors load), then the registry's
    champion alias (unless there is no registry). If MLflow fails in between, `record_champion`
    completes it (idempotent)."""
    store.set_current(version)
    if registry is not None:
        record_champion(version, registry)


def record_champion(version: int, registry: Registry) -> None:
    """Point the MLflow `champion` alias at the registry version of store version `version`
    (nothing to do if it points there already)."""
    point_champion_at(registry.tracking_uri, registry.registered_model, version)
