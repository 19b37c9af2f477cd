"""Which version serves: the one module that decides promotion and records it.

A version is judged once, when it is trained (the holdout gate); the verdict is written into its
metadata before it is published. Making it current (CURRENT, HISTORY and the MLflow `champion`
alias) happens here too, for the trainer, initialize and rollback alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from train.mlflow_runs import point_champion_at
from utils.messages.events import CANARY, SHADOW
from utils.model_store import ModelStore

log = logging.getLogger(__name__)

Gate = Callable[[Mapping[str, float]], tuple[bool, str]]
ROLLOUT_KEY = "rollout"  # in a version's metadata: the rollout it was trained under (mode, canary_fraction)
DECISION_KEY = "rollout_decision"  # in a challenger's metadata once its trial is over (train/rollout.py)


def holdout_decision(champion_auc: float, challenger_auc: float, tolerance: float) -> tuple[bool, str]:
    """Champion/challenger: promote unless the holdout AUC drops by more than `tolerance`."""
    promoted = challenger_auc >= champion_auc - tolerance
    verdict = "not worse" if promoted else "worse"
    return promoted, (
        f"holdout AUC {challenger_auc:.4f} vs champion {champion_auc:.4f}: {verdict} than the tolerance {tolerance}"
    )


def holdout_gate(champion_metrics: Mapping[str, float], tolerance: float) -> Gate:
    """The gate a retrain applies to its new version's metrics."""
    champion_auc = float(champion_metrics["holdout_auc"])
    return lambda metrics: holdout_decision(champion_auc, float(metrics["holdout_auc"]), tolerance)


def on_trial(metadata: Mapping) -> bool:
    """Trained under a shadow or canary rollout, and its trial not decided yet."""
    mode = (metadata.get(ROLLOUT_KEY) or {}).get("mode")
    return mode in (SHADOW, CANARY) and DECISION_KEY not in metadata


def should_make_current(version: int, metadata: Mapping, history: Sequence[int]) -> bool:
    """A version the gate promoted becomes current once (at once in a direct rollout, after a trial
    that promotes it otherwise): a version that was current before is not made current again by the
    trainer, so an operator's rollback survives a trainer restart."""
    if version in history:
        return False
    decision = metadata.get(DECISION_KEY)
    if decision is not None:
        return bool(decision["promoted"])
    return bool(metadata.get("promoted", True)) and not on_trial(metadata)


def should_start_trial(version: int, metadata: Mapping, history: Sequence[int]) -> bool:
    """A version that passed the holdout gate under a shadow or canary rollout goes on trial (once)."""
    return bool(metadata.get("promoted", True)) and version not in history and on_trial(metadata)


def make_current(store: ModelStore, version: int, tracking_uri: str, registered_model: str) -> None:
    """Serve `version`: the store's CURRENT pointer first (what predictors load), then the registry's
    champion alias. If MLflow fails in between, record_champion() completes it (idempotent)."""
    store.set_current(version)
    record_champion(version, tracking_uri, registered_model)


def record_champion(version: int, tracking_uri: str, registered_model: str) -> None:
    """Point the MLflow `champion` alias at the registry version of store version `version`
    (nothing to do if it points there already)."""
    point_champion_at(tracking_uri, registered_model, version)
