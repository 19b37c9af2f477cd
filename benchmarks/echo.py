"""The ceiling: a plain Kafka echo (consume app_messages -> produce the same bytes to predictions),
with the predictor's client settings and commit discipline but no ML. Run by benchmarks/pipeline.py."""

from __future__ import annotations

import argparse
import signal
import threading

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from utils.kafka_io import create_consumer, create_producer, subscribe
from utils.settings import add_common_arguments, common_from_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_arguments(parser)
    parser.add_argument("--group-id", default="echo")
    common = common_from_args(parser.parse_args())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    producer = create_producer(common.kafka, "echo")
    consumer = create_consumer(common.kafka, "echo", parser.parse_args().group_id, max_poll_records=500)
    subscribe(consumer, common.topics.app_messages)
    print("echo ready", flush=True)
    try:
        while not stop.is_set():
            polled = consumer.poll(timeout_ms=100)
            offsets = {}
            for partition, records in polled.items():
                for record in records:
                    producer.send(common.topics.predictions, key=record.key, value=record.value)
                offsets[TopicPartition(partition.topic, partition.partition)] = OffsetAndMetadata(
                    records[-1].offset + 1, "", -1
                )
            if offsets:
                producer.flush()
                consumer.commit(offsets)
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=5)


if __name__ == "__main__":
    main()
