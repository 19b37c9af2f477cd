"""The recent history of the control topic, read back by services when they start or announce."""

from __future__ import annotations

from utils.kafka.clients import create_consumer
from utils.kafka.interface import ConsumerOptions, Partition
from utils.kafka.reading import read_latest
from utils.messages import ControlMessage, controls_of
from utils.settings import KafkaSettings

CONTROL_HISTORY = 1000  # control messages read back: months of retrains at one every few minutes


def recent_control_messages(
    kafka: KafkaSettings, topic: str, client_id: str, count: int = CONTROL_HISTORY
) -> list[ControlMessage]:
    """The last `count` control messages of `topic` (one partition), as committed, oldest first."""
    reader = create_consumer(kafka, ConsumerOptions(client_id, read_committed=True))
    try:
        records = read_latest(reader, Partition(topic, 0), count)
    finally:
        reader.close()
    return controls_of(record.value for record in records)
