"""The ceiling: a plain Kafka echo (consume app_messages -> produce the same bytes to predictions),
with the predictor's client settings and commit discipline but no ML. Run by benchmarks/pipeline.py."""

from __future__ import annotations

import argparse
import signal
import threading

from utils.kafka.clients import create_consumer, create_producer
from utils.kafka.interface import ConsumerOptions, ProducerOptions
from utils.kafka.offsets import commit_offsets
from utils.settings import add_common_arguments, common_from_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_arguments(parser)
    parser.add_argument("--group-id", default="echo")
    common = common_from_args(parser.parse_args())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    producer = create_producer(common.kafka, ProducerOptions("echo"))
    consumer = create_consumer(common.kafka, ConsumerOptions("echo", parser.parse_args().group_id))
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
