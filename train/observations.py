"""The retraining data that predictors log to Kafka: read back, deduplicated, as a frame."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pandas as pd

from utils.kafka.clients import create_consumer
from utils.kafka.interface import ConsumerOptions, Partition, Record
from utils.kafka.reading import read_range
from utils.messages.codec import MessageError, decode_object
from utils.messages.requests import Observation
from utils.schema import FEATURE_FIELDS
from utils.settings import KafkaSettings

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 60.0
READ_BATCH = 5000


def read_observations(kafka: KafkaSettings, topic: str, end_offset: int, max_count: int) -> list[Observation]:
    """The last `max_count` valid observations before `end_offset`, once per request id (a replayed
    batch may have written one twice). Raises a KafkaError if the log cannot be read that far."""
    consumer = create_consumer(
        kafka, ConsumerOptions("trainer-observations", max_poll_records=READ_BATCH, read_committed=True)
    )
    partition = Partition(topic, 0)
    try:
        consumer.assign([partition])
        consumer.seek_to_beginning([partition])
        start = max(consumer.position(partition), end_offset - max_count)
        return once_per_request(read_range(consumer, partition, start, end_offset, READ_TIMEOUT_S, READ_BATCH))
    finally:
        consumer.close()


def once_per_request(records: Iterable[Record]) -> list[Observation]:
    """The readable observations among these records, the last one of each request id (a replayed
    batch may have written one twice), in the order each id first appeared."""
    by_request: dict[str, Observation] = {}
    for record in records:
        try:
            observation = Observation.from_dict(decode_object(record.value))
        except MessageError as error:
            log.warning("skipping unreadable observation offset=%s error=%s", record.offset, error)
            continue
        by_request[observation.request_id] = observation
    return list(by_request.values())


def observations_frame(observations: list[Observation]) -> pd.DataFrame:
    rows = [{**{name: obs.features[name] for name in FEATURE_FIELDS}, "label": obs.label} for obs in observations]
    frame = pd.DataFrame(rows, columns=[*FEATURE_FIELDS, "label"])
    # A null category is a missing value, spelt as in the census files.
    return frame.fillna("?") if len(frame) else frame
