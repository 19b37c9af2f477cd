"""The ceiling: a plain Kafka echo (consume app_messages -> produce the same bytes to predictions),
with the predictor's client settings and commit discipline but no ML. Run by benchmarks/pipeline.py.

Pipelined as the predictor is: it sends without waiting and, every COMMIT_INTERVAL_S, flushes and
commits what it has read, without waiting for the commit's answer. With `--records-per-request 2`
it also writes each record to the observations topic: the Kafka work of a labelled request (an
answer and an observation)."""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass

from utils.cli import settings_from
from utils.kafka.clients import create_consumer, create_producer
from utils.kafka.interface import ConsumerOptions, ProducerOptions, Record
from utils.kafka.offsets import commit_offsets
from utils.settings import CommonSettings, PositiveInt, option

COMMIT_INTERVAL_S = 0.1  # the predictor's --commit-interval-ms default


@dataclass(frozen=True)
class EchoSettings:
    common: CommonSettings = CommonSettings()
    group_id: str = option("echo", "consumer group")
    records_per_request: PositiveInt = option(1, "records written per request: 2 adds one to the observations topic")


def main() -> None:
    settings = settings_from(EchoSettings, sys.argv[1:], description=__doc__)
    common = settings.common
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    producer = create_producer(common.kafka, ProducerOptions("echo"))
    consumer = create_consumer(common.kafka, ConsumerOptions("echo", settings.group_id))
    consumer.subscribe(common.topics.app_messages)
    print("echo ready", flush=True)
    observations = common.topics.observations if settings.records_per_request > 1 else None
    pending: list[Record] = []
    next_commit = time.monotonic() + COMMIT_INTERVAL_S
    try:
        while not stop.is_set():
            records = consumer.poll(0.1)
            for record in records:
                producer.send(common.topics.predictions, record.value or b"", record.key)
                if observations is not None:
                    producer.send(observations, record.value or b"", record.key)
            pending += records
            if pending and time.monotonic() >= next_commit:
                producer.flush()
                consumer.commit_async(commit_offsets(pending))
                pending = []
                next_commit = time.monotonic() + COMMIT_INTERVAL_S
    finally:
        consumer.close()
        producer.close(timeout_s=5)


if __name__ == "__main__":
    main()
