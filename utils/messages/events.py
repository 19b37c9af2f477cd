"""What the services tell each other, one class per event, on two topics:

- the retrain topic (`Topics.retrain`) carries what predictors say: `RetrainRequested`, `ModelRefused`;
- the model-events topic (`Topics.model_events`) carries what the trainer and operators say:
  `TrainingCompleted`, `ChallengerStarted`, `RolloutDecided`, `ModelRolledBack`.

By default the two are one topic, as in the original (one ordered conversation); with ACLs they are
two, so the broker enforces who may say what. On the wire each event is a JSON object whose
`event` field names its class (`EVENT_TYPES`); unknown fields are ignored, so that a newer sender
can add some.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from utils.messages.codec import MessageError, record_from_dict

RolloutMode = Literal["shadow", "canary"]  # a rollout with a trial (a direct one has none)
SHADOW: RolloutMode = "shadow"  # the challenger scores every request beside the champion; the champion answers
CANARY: RolloutMode = "canary"  # as shadow, and the challenger answers a stable share of the requests
DIRECT = "direct"  # no trial: a version that passes the holdout gate serves at once

# Who ended a rollout's trial: its live judgement, an operator (promote.py), a newer challenger
# (superseded) or a rollback (rollback.py).
DecidedBy = Literal["live judgement", "operator", "superseded", "rollback"]
LIVE_JUDGEMENT: DecidedBy = "live judgement"
OPERATOR: DecidedBy = "operator"
SUPERSEDED: DecidedBy = "superseded"
ROLLBACK: DecidedBy = "rollback"


class _Event:
    """What every event class shares: its wire form names it."""

    EVENT: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.EVENT, **dataclasses.asdict(self)}  # type: ignore[call-overload]


# Why a predictor asks for a retrain (predict/retrain_triggers.py): a count of observations, drift of
# its requests or scores, a drop of its live quality, or time with enough new observations.
RetrainReason = Literal["count", "drift", "quality", "time"]
COUNT: RetrainReason = "count"
DRIFT: RetrainReason = "drift"
QUALITY: RetrainReason = "quality"
TIME: RetrainReason = "time"


@dataclass(frozen=True)
class RetrainRequested(_Event):
    """Retrain on every observation before `observations_end_offset` (exclusive), because of
    `reason`, shown by `evidence` (the figures the trigger fired on, about the serving version).
    `newest_version_known` is the newest version the predictor knew had been trained, served or
    not (0 for a count): once the trainer has a newer one, the request was made before it and is
    stale. Requests from before reasons decode as counts."""

    EVENT: ClassVar[str] = "retrain_requested"
    observations_end_offset: int
    requested_by: str = ""
    reason: RetrainReason = COUNT
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)
    newest_version_known: int = 0


@dataclass(frozen=True)
class ModelRefused(_Event):
    """A predictor would not serve a version (failed checksum, schema or smoke prediction)."""

    EVENT: ClassVar[str] = "model_refused"
    version: int
    reason: str
    refused_by: str = ""


@dataclass(frozen=True)
class TrainingCompleted(_Event):
    """A new version is in the model store. Carries its number, never a path."""

    EVENT: ClassVar[str] = "training_completed"
    version: int
    promoted: bool
    metrics: dict[str, float]
    trained_rows: int
    observations_end_offset: int


@dataclass(frozen=True)
class ModelRolledBack(_Event):
    """An operator made an earlier (or any verified) version the serving one: predictors swap to it."""

    EVENT: ClassVar[str] = "model_rolled_back"
    version: int
    previous_version: int | None = None
    requested_by: str = ""


@dataclass(frozen=True)
class ChallengerStarted(_Event):
    """A version on trial beside the champion. The model store keeps the same record in its
    CHALLENGER file, so a predictor that starts later joins the rollout."""

    EVENT: ClassVar[str] = "challenger_started"
    version: int
    champion_version: int
    mode: RolloutMode
    canary_fraction: float = 0.0  # share of requests the challenger answers (canary only)
    observations_start: int = 0  # the paired tally reads the observations log from this offset

    def __post_init__(self) -> None:
        if self.mode not in (SHADOW, CANARY) or not 0.0 <= self.canary_fraction <= 1.0:
            raise ValueError(f"mode {self.mode!r}, canary_fraction {self.canary_fraction}")
        if self.mode != CANARY:
            object.__setattr__(self, "canary_fraction", 0.0)


@dataclass(frozen=True)
class RolloutDecided(_Event):
    """The trial of `version` is over: promoted (predictors serve it) or not (they drop it)."""

    EVENT: ClassVar[str] = "rollout_decided"
    version: int
    promoted: bool
    decided_by: DecidedBy
    reason: str = ""


PredictorEvent = RetrainRequested | ModelRefused
ModelEvent = TrainingCompleted | ChallengerStarted | RolloutDecided | ModelRolledBack
Event = PredictorEvent | ModelEvent

EVENT_TYPES: dict[str, type] = {
    kind.EVENT: kind
    for kind in (RetrainRequested, ModelRefused, TrainingCompleted, ChallengerStarted, RolloutDecided, ModelRolledBack)
}


def event_from_dict(payload: Mapping[str, Any]) -> Event:
    """The event a JSON object holds; MessageError (`invalid_event`) if it is not one."""
    name = payload.get("event")
    kind = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if kind is None:
        raise MessageError("invalid_event", f"unknown event {name!r}")
    try:
        return typing.cast(Event, record_from_dict(kind, payload))
    except (KeyError, TypeError, ValueError) as error:
        raise MessageError("invalid_event", f"bad {name} message: {error!r}") from error


def serving_version(event: Event) -> int | None:
    """The version predictors must serve after this event, or None if it changes nothing."""
    if isinstance(event, TrainingCompleted | RolloutDecided) and event.promoted:
        return event.version
    if isinstance(event, ModelRolledBack):
        return event.version
    return None
