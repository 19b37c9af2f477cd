"""The retraining data that predictors log to Kafka: read back, deduplicated, as a frame."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd

from utils.data import TARGET
from utils.form import Form
from utils.kafka.clients import create_consumer
from utils.kafka.interface import ConsumerOptions, Partition, Record
from utils.kafka.reading import read_range
from utils.messages.codec import MessageError, decode_object
from utils.messages.requests import Observation
from utils.settings import KafkaSettings
from utils.spec import DatasetSpec

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 60.0
READ_BATCH = 5000


def read_observations(
    kafka: KafkaSettings, topic: str, end_offset: int, max_count: int, form: Form
) -> list[Observation]:
    """The last `max_count` observations before `end_offset` that fit `form` (the serving version's:
    those of an earlier lineage do not), once per request id (a replayed batch may have written one
    twice). Raises a KafkaError if the log cannot be read that far."""
    consumer = create_consumer(
        kafka, ConsumerOptions("trainer-observations", max_poll_records=READ_BATCH, read_committed=True)
    )
    partition = Partition(topic, 0)
    try:
        consumer.assign([partition])
        consumer.seek_to_beginning([partition])
        start = max(consumer.position(partition), end_offset - max_count)
        records = read_range(consumer, partition, start, end_offset, READ_TIMEOUT_S, READ_BATCH)
        return once_per_request(records, form)
    finally:
        consumer.close()


def once_per_request(records: Iterable[Record], form: Form) -> list[Observation]:
    """The observations among these records that fit `form`, the last one of each request id (a
    replayed batch may have written one twice), in the order each id first appeared. The others are
    counted, by reason, in one log line."""
    by_request: dict[str, Observation] = {}
    skipped: Counter[str] = Counter()
    for record in records:
        try:
            observation = Observation.from_dict(decode_object(record.value), form)
        except MessageError as error:
            skipped[error.code] += 1
            continue
        by_request[observation.request_id] = observation
    if skipped:
        log.warning(
            "observations skipped, they do not fit the serving form count=%s reasons=%s",
            sum(skipped.values()),
            ",".join(f"{code}:{count}" for code, count in skipped.most_common()),
        )
    return list(by_request.values())


def observations_frame(observations: list[Observation], spec: DatasetSpec) -> pd.DataFrame:
    """A frame like utils/data.py's: the spec's fields (None or NaN: missing) and TARGET."""
    rows = [{**{name: obs.features[name] for name in spec.field_names}, TARGET: obs.label} for obs in observations]
    frame = pd.DataFrame(rows, columns=[*spec.field_names, TARGET])
    numeric = {item.name: np.float64 for item in spec.numeric}
    return frame.astype({**numeric, TARGET: np.int64}) if len(frame) else frame.astype(numeric)
