"""The ceiling: a plain Kafka echo (consume app_messages -> produce the same bytes to predictions),
with the predictor's client settings and commit discipline but no ML. Run by benchmarks/pipeline.py."""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import dataclass

from utils.cli import settings_from
from utils.kafka.clients import create_consumer, create_producer
from utils.kafka.interface import ConsumerOptions, ProducerOptions
from utils.kafka.offsets import commit_offsets
from utils.settings import CommonSettings, option


@dataclass(frozen=True)
class EchoSettings:
    common: CommonSettings = CommonSettings()
    group_id: str = option("echo", "consumer group")


def main() -> None:
    settings = settings_from(EchoSettings, sys.argv[1:], description=__doc__)
    common = settings.common
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    producer = create_producer(common.kafka, ProducerOptions("echo"))
    consumer = create_consumer(common.kafka, ConsumerOptions("echo", settings.group_id))
    consumer.subscribe(common.topics.app_messages)
    print("echo ready", flush=True)
    try:
        while not stop.is_set():
            records = consumer.poll(0.1)
            for record in records:
                producer.send(common.topics.predictions, record.value or b"", record.key)
            if records:
                producer.flush()
                consumer.commit(commit_offsets(records))
    finally:
        consumer.close()
        producer.close(timeout_s=5)


if __name__ == "__main__":
    main()
