"""Starting and ending a version's trial beside the champion: the trainer, promote.py and
rollback.py all go through `Trials`.

Ending a trial writes the decision into the challenger's metadata first, then carries it out (the
champion made current if promoted, the store's CHALLENGER cleared), then announces it: a process
killed halfway completes the same decision on restart (`conclude` is idempotent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from train.announce import Announcer
from train.champion import Registry, make_current
from train.mlflow_runs import record_rollout_decision
from train.rollout.judgement import Judgement, PairedFigures
from utils.messages.events import SUPERSEDED, ChallengerStarted, DecidedBy, RolloutDecided
from utils.model_store import ModelStore, RolloutDecision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ending:
    """How a trial is to end: promoted or not, by whom, why, on which live figures, and (for a live
    judgement) by which rule at how many pairs."""

    promoted: bool
    decided_by: DecidedBy
    reason: str
    figures: PairedFigures | None = None
    judgement: Judgement | None = None

    def record(self) -> dict | None:
        """The figures as the challenger's metadata keeps them, the judgement under `judgement`."""
        if self.figures is None and self.judgement is None:
            return None
        figures = self.figures.to_dict() if self.figures is not None else {}
        return figures | ({"judgement": self.judgement.to_dict()} if self.judgement is not None else {})


def conclude(
    store: ModelStore, rollout: ChallengerStarted, ending: Ending | None, registry: Registry | None = None
) -> RolloutDecided:
    """End a trial in the store: the decision into the challenger's metadata (unless one is there
    already: the first decision wins; `ending` None finishes that one), the challenger made current
    if promoted, the store's rollout cleared. Idempotent. Returns the announcement to send."""
    decision = store.metadata(rollout.version).rollout_decision
    if decision is None:
        if ending is None:
            raise ValueError(f"version {rollout.version} has no decision to finish")
        decision = RolloutDecision(
            promoted=ending.promoted,
            decided_by=ending.decided_by,
            reason=ending.reason,
            mode=rollout.mode,
            champion_version=rollout.champion_version,
            figures=ending.record(),
        )
        store.update_metadata(rollout.version, rollout_decision=decision)
    if decision.promoted and store.current_version() != rollout.version:
        make_current(store, rollout.version, registry)
    current = store.challenger()
    if current is not None and current.version == rollout.version:
        store.set_challenger(None)
    log.info(
        "rollout decided version=%s promoted=%s decided_by=%s reason=%s",
        rollout.version,
        decision.promoted,
        decision.decided_by,
        decision.reason,
    )
    return RolloutDecided(rollout.version, decision.promoted, decision.decided_by, decision.reason)


class Trials:
    """Trials in one model store, announced on the model-events topic and recorded in MLflow."""

    def __init__(self, store: ModelStore, registry: Registry, announcer: Announcer):
        self.store = store
        self.registry = registry
        self.announcer = announcer

    def start(self, rollout: ChallengerStarted) -> ChallengerStarted:
        """Record the rollout in the store (where predictors that start later find it), then announce
        it. A trial in progress for another version is superseded: the newer version is judged. A
        trial started before a restart keeps its tally start. Returns the rollout in progress."""
        current = self.store.challenger()
        if current is not None and current.version == rollout.version:
            rollout = current
        else:
            if current is not None:
                self.end(current, Ending(False, SUPERSEDED, f"version {rollout.version} is on trial instead"))
            self.store.set_challenger(rollout)
        self.announcer.announce(rollout)
        log.info(
            "challenger on trial version=%s champion=%s mode=%s canary_fraction=%s tally_from_offset=%s",
            rollout.version,
            rollout.champion_version,
            rollout.mode,
            rollout.canary_fraction,
            rollout.observations_start,
        )
        return rollout

    def end(self, rollout: ChallengerStarted, ending: Ending | None) -> RolloutDecided:
        """Conclude a trial (idempotent; `ending` None finishes the decision recorded), tell the
        predictors, and record it on the challenger's MLflow run (best effort: the store's metadata
        is the record serving follows)."""
        decided = conclude(self.store, rollout, ending, self.registry)
        self.announcer.announce(decided)
        run_id = self.store.metadata(rollout.version).mlflow_run_id
        metrics = decision_metrics(ending.figures, ending.judgement) if ending is not None else {}
        record_rollout_decision(self.registry.tracking_uri, run_id, decided, metrics)
        return decided


def decision_metrics(figures: PairedFigures | None, judgement: Judgement | None = None) -> dict[str, float]:
    """The figures of a live judgement as MLflow metrics of the challenger's training run."""
    metrics = {}
    if judgement is not None:
        metrics["live_pairs_to_decision"] = float(judgement.pairs)
        if judgement.log_loss_difference is not None:
            metrics["live_log_loss_difference_low"] = judgement.log_loss_difference.low
            metrics["live_log_loss_difference_high"] = judgement.log_loss_difference.high
    if figures is None:
        return metrics
    return metrics | {
        "live_labelled": float(figures.labelled),
        "live_auc_champion": figures.champion["auc"],
        "live_auc_challenger": figures.challenger["auc"],
        "live_auc_difference": figures.auc_difference.estimate,
        "live_auc_difference_low": figures.auc_difference.low,
        "live_auc_difference_high": figures.auc_difference.high,
        "live_log_loss_champion": figures.champion["log_loss"],
        "live_log_loss_challenger": figures.challenger["log_loss"],
        "live_log_loss_difference": figures.log_loss_difference.estimate,
        "live_accuracy_champion": figures.champion["accuracy"],
        "live_accuracy_challenger": figures.challenger["accuracy"],
    }
