"""What the trainer must do for a poll of its topic, decided without I/O."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from utils.kafka.interface import Record
from utils.messages.codec import MessageError, decode_object
from utils.messages.events import RetrainRequested, event_from_dict
from utils.model_store import RetrainCause

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainTarget:
    """One retrain covering every request of a poll: up to the largest end offset asked for, for
    every reason they gave."""

    observations_end_offset: int
    coalesced: int
    requests: tuple[RetrainRequested, ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(sorted({request.reason for request in self.requests}))

    def causes(self) -> dict[str, RetrainCause]:
        """What the version's metadata records: per reason, its newest request's evidence and how
        many requests gave it."""
        causes: dict[str, RetrainCause] = {}
        for request in self.requests:  # in the order of the topic: the newest of a reason wins
            count = causes[request.reason].requests + 1 if request.reason in causes else 1
            causes[request.reason] = RetrainCause(
                request.reason, request.requested_by, dict(request.evidence), request.newest_version_known, count
            )
        return causes

    def without_stale(self, latest_version: int) -> RetrainTarget | None:
        """The requests still to act on once `latest_version` exists: a drift, quality or time
        request made before it was trained (its predictor knew only older versions) asked for what
        that retrain did already, so one cause seen by several predictors retrains once. None if
        nothing is left."""
        fresh = tuple(r for r in self.requests if not 0 < r.newest_version_known < latest_version)
        if not fresh:
            return None
        return RetrainTarget(max(r.observations_end_offset for r in fresh), len(fresh), fresh)


def retrain_target(records: Iterable[Record]) -> RetrainTarget | None:
    """The retrain these records ask for, or None. Requests that piled up during a retrain are
    coalesced (the largest offset covers the others, their reasons are all kept); other events and
    unreadable records are skipped."""
    requests = []
    for record in records:
        try:
            message = event_from_dict(decode_object(record.value))
        except MessageError as error:
            log.warning("unreadable message on %s offset=%s error=%s", record.topic, record.offset, error)
            continue
        if isinstance(message, RetrainRequested):
            requests.append(message)
    if not requests:
        return None
    return RetrainTarget(max(r.observations_end_offset for r in requests), len(requests), tuple(requests))
