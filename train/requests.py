"""What the trainer must do for a poll of its topic, decided without I/O."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from utils.kafka.interface import Record
from utils.messages.codec import MessageError, decode_object
from utils.messages.events import RetrainRequested, event_from_dict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainTarget:
    """One retrain covering every request of a poll: up to the largest end offset asked for."""

    observations_end_offset: int
    coalesced: int


def retrain_target(records: Iterable[Record]) -> RetrainTarget | None:
    """The retrain these records ask for, or None. Requests that piled up during a retrain are
    coalesced (the largest offset covers the others); other events and unreadable records are skipped."""
    ends = []
    for record in records:
        try:
            message = event_from_dict(decode_object(record.value))
        except MessageError as error:
            log.warning("unreadable message on %s offset=%s error=%s", record.topic, record.offset, error)
            continue
        if isinstance(message, RetrainRequested):
            ends.append(message.observations_end_offset)
    return RetrainTarget(max(ends), len(ends)) if ends else None
