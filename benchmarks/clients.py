"""Micro-benchmark of the two Kafka client libraries behind the project's interface: kafka-python and
confluent-kafka, both through the project's interface (utils/kafka/), with the same options.

For each client, on fresh topics of the running broker:
  produce  N records of ~400 bytes, then flush (records/s, send of the first to the last acknowledgement;
           the producer is connected and knows the topic beforehand: one warm-up record)
  consume  the same records back from the beginning with poll() in batches of up to 500 (records/s,
           from the first poll, so including the first fetch)
  echo     one record at a time: send, poll until it arrives, repeat (500 samples): p50/p99 latency

    KAFKA_BOOTSTRAP_SERVERS=localhost:29092 python -m benchmarks.clients [--records 100000] [--samples 500]

Prints a table and writes benchmarks/results/clients.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
import uuid
from pathlib import Path

import confluent_kafka
import kafka
import numpy as np

from utils.cli import settings_from
from utils.kafka.clients import CLIENTS, create_admin, create_consumer, create_producer
from utils.kafka.interface import ConsumerOptions, Partition, ProducerOptions, TopicSpec
from utils.kafka.reading import assign_from_end
from utils.settings import KafkaClient, KafkaSettings, Topics

RESULTS = Path(__file__).resolve().parent / "results"
PARTITIONS = Topics().partitions()[Topics().app_messages]  # as the predictor's input topic
# The services' producer and consumer options; the load generator's for the bulk producer.
PRODUCER_OPTIONS: dict = {}
BULK_OPTIONS = {"linger_ms": 2, "batch_bytes": 64 * 1024}
CONSUMER_OPTIONS: dict[str, int] = {"max_poll_records": 500}
WARMUP = 20


def make_producer(client: KafkaClient, kafka_settings: KafkaSettings, **overrides):
    settings = dataclasses.replace(kafka_settings, client=client)
    return create_producer(settings, ProducerOptions(f"bench-{client}", **{**PRODUCER_OPTIONS, **overrides}))


def make_consumer(client: KafkaClient, kafka_settings: KafkaSettings):
    settings = dataclasses.replace(kafka_settings, client=client)
    return create_consumer(
        settings, ConsumerOptions(f"bench-{client}", max_poll_records=CONSUMER_OPTIONS["max_poll_records"])
    )


def payloads(count: int, size: int) -> list[bytes]:
    """JSON-like requests of `size` bytes, like the sample app's."""
    return [
        json.dumps({"request_id": f"bench-{seq:09d}", "pad": ""}).encode().ljust(size, b" ") for seq in range(count)
    ]


def throughput(client: KafkaClient, kafka_settings: KafkaSettings, topic: str, records: list[bytes]) -> dict:
    producer = make_producer(client, kafka_settings, **BULK_OPTIONS)
    producer.send(topic, b"warm-up").result(timeout_s=30)  # connected, topic metadata known: not timed
    started = time.perf_counter()
    for seq, value in enumerate(records):
        producer.send(topic, value, str(seq).encode())
    producer.flush()
    produce_s = time.perf_counter() - started
    producer.close(timeout_s=10)

    consumer = make_consumer(client, kafka_settings)
    partitions = [Partition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(partitions)
    received, polls = 0, 0
    started = time.perf_counter()
    deadline = started + 300
    while received < len(records) + 1 and time.perf_counter() < deadline:
        received += len(consumer.poll(0.1))
        polls += 1
    consume_s = time.perf_counter() - started
    consumer.close()
    assert received == len(records) + 1, f"{client}: consumed {received} of {len(records) + 1}"
    return {
        "produce_per_s": round(len(records) / produce_s),
        "produce_mb_per_s": round(sum(map(len, records)) / produce_s / 1e6, 1),
        "consume_per_s": round(received / consume_s),
        "consume_polls": polls,
    }


def echo_latency(client: KafkaClient, kafka_settings: KafkaSettings, topic: str, samples: int, size: int) -> dict:
    producer = make_producer(client, kafka_settings)
    consumer = make_consumer(client, kafka_settings)
    assign_from_end(consumer, topic)
    latencies = []
    for seq in range(WARMUP + samples):
        value = f"echo-{seq:06d}".encode().ljust(size, b" ")
        started = time.perf_counter()
        producer.send(topic, value)
        arrived = False
        while not arrived and time.perf_counter() - started < 10:
            arrived = any(r.value == value for r in consumer.poll(0.1))
        assert arrived, f"{client}: echo {seq} not received"
        if seq >= WARMUP:
            latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.005)  # low rate: one record in flight at a time, ~150/s at most
    producer.close(timeout_s=10)
    consumer.close()
    values = np.array(latencies)
    return {
        "echo_p50_ms": round(float(np.percentile(values, 50)), 2),
        "echo_p99_ms": round(float(np.percentile(values, 99)), 2),
        "echo_max_ms": round(float(values.max()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=400, help="bytes per record")
    parser.add_argument("--samples", type=int, default=500, help="echo round trips")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    args = parser.parse_args()
    kafka_settings = KafkaSettings(bootstrap_servers=settings_from(KafkaSettings).bootstrap_servers)
    records = payloads(args.records, args.size)
    admin = create_admin(kafka_settings, "bench-admin")
    results: dict[str, dict] = {}
    try:
        for client in args.clients.split(","):
            prefix = f"bench-clients-{uuid.uuid4().hex[:8]}-"
            bulk, echo = prefix + "bulk", prefix + "echo"
            admin.create_topics([TopicSpec(bulk, PARTITIONS), TopicSpec(echo, 1)])
            print(f"{client}: {args.records} records of {args.size} bytes...", flush=True)
            results[client] = throughput(client, kafka_settings, bulk, records)
            results[client] |= echo_latency(client, kafka_settings, echo, args.samples, args.size)
    finally:
        admin.close()
    print_table(results)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "bootstrap_servers": kafka_settings.bootstrap_servers,
        "versions": {
            "kafka-python": kafka.__version__,
            "confluent-kafka": confluent_kafka.__version__,
            "librdkafka": confluent_kafka.libversion()[0],
            "python": platform.python_version(),
        },
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "plan": {
            "records": args.records,
            "record_bytes": args.size,
            "partitions": PARTITIONS,
            "echo_samples": args.samples,
            "echo_warmup": WARMUP,
            "producer_options": PRODUCER_OPTIONS,
            "bulk_producer_overrides": BULK_OPTIONS,
            "consumer_options": CONSUMER_OPTIONS,
        },
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "clients.json").write_text(json.dumps(report, indent=1))
    print(f"written {RESULTS / 'clients.json'}")


def print_table(results: dict[str, dict]) -> None:
    columns = ("produce_per_s", "produce_mb_per_s", "consume_per_s", "echo_p50_ms", "echo_p99_ms", "echo_max_ms")
    print(f"{'client':<14}" + "".join(f"{name:>18}" for name in columns))
    for client, row in results.items():
        print(f"{client:<14}" + "".join(f"{row[name]:>18}" for name in columns))


if __name__ == "__main__":
    main()
