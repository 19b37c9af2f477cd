"""Which version serves, decided purely: the holdout gate a new version passes or not, and, from
its metadata and the promotion history, whether it is made current or goes on trial first.

A version is judged once, when it is trained (the holdout gate); the verdict is written into its
metadata before it is published, so a trainer killed at any point decides the same on restart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from utils.messages.events import CANARY, SHADOW
from utils.model_store import VersionMetadata

Gate = Callable[[Mapping[str, float]], tuple[bool, str]]


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


def on_trial(metadata: VersionMetadata) -> bool:
    """Trained under a shadow or canary rollout, and its trial not decided yet."""
    return metadata.rollout.mode in (SHADOW, CANARY) and metadata.rollout_decision is None


def should_make_current(version: int, metadata: VersionMetadata, history: Sequence[int]) -> bool:
    """A version the gate promoted becomes current once (at once in a direct rollout, after a trial
    that promotes it otherwise): a version that was current before is not made current again by the
    trainer, so an operator's rollback survives a trainer restart."""
    if version in history:
        return False
    if metadata.rollout_decision is not None:
        return metadata.rollout_decision.promoted
    return metadata.promoted and not on_trial(metadata)


def should_start_trial(version: int, metadata: VersionMetadata, history: Sequence[int]) -> bool:
    """A version that passed the holdout gate under a shadow or canary rollout goes on trial (once)."""
    return metadata.promoted and version not in history and on_trial(metadata)
