"""The recent history of the model-events topic, read back by services when they start or before
they announce something, and the questions asked of it (pure functions over events in topic order)."""

from __future__ import annotations

from collections.abc import Iterable

from utils.kafka.clients import create_consumer
from utils.kafka.interface import ConsumerOptions, Partition
from utils.kafka.reading import read_latest
from utils.messages.codec import MessageError, decode_object
from utils.messages.events import ChallengerStarted, Event, RolloutDecided, TrainingCompleted, event_from_dict
from utils.settings import KafkaSettings

EVENT_HISTORY = 1000  # events read back: months of retrains at one every few minutes


def recent_events(kafka: KafkaSettings, topic: str, client_id: str, count: int = EVENT_HISTORY) -> list[Event]:
    """The last `count` events of `topic` (one partition), as committed, oldest first."""
    reader = create_consumer(kafka, ConsumerOptions(client_id, read_committed=True))
    try:
        records = read_latest(reader, Partition(topic, 0), count)
    finally:
        reader.close()
    return readable_events(record.value for record in records)


def readable_events(values: Iterable[bytes | None]) -> list[Event]:
    """The readable events among these record values, in order; the others are skipped (the live
    readers log them)."""
    events: list[Event] = []
    for value in values:
        try:
            events.append(event_from_dict(decode_object(value)))
        except MessageError:
            continue
    return events


def already_announced(events: Iterable[Event], version: int, serving: bool) -> bool:
    """True if the last `training_completed` of `version` among these events says `serving`: a
    trainer restarted after announcing it must not announce it again."""
    last = None
    for event in events:
        if isinstance(event, TrainingCompleted) and event.version == version:
            last = event.promoted
    return last is serving


def rollout_in_progress(events: Iterable[Event]) -> ChallengerStarted | None:
    """The rollout still going on at the end of these events (in topic order), or None."""
    rollout: ChallengerStarted | None = None
    for event in events:
        if isinstance(event, ChallengerStarted):
            rollout = event
        elif isinstance(event, RolloutDecided) and rollout is not None and event.version == rollout.version:
            rollout = None
    return rollout
