"""What a three-node cluster costs: the predictor and the echo (both on librdkafka) on one node and
on a local cluster of three (topics replicated 3 times, min ISR 2, as the pipeline creates them on
three brokers), same machine, same run; throughput and p50/p99 at 1,000/s, and their ratios.

The single node is the running local broker (KAFKA_BOOTSTRAP_SERVERS, default localhost:9092); the
cluster is started here with scripts/kafka.sh (KAFKA_NODES=3) on ports 39092/39192/39292, in a
temporary state folder, and stopped at the end.

    python -m benchmarks.cluster            # about 6 minutes

Writes benchmarks/results/cluster.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from benchmarks.pipeline import RESULTS, ROOT, benchmark_mode, describe_machine, prepare_store
from utils.cli import settings_from
from utils.data import frame_to_records, labels_of, load_dataset
from utils.kafka.clients import create_admin, create_consumer, create_producer
from utils.kafka.interface import ConsumerOptions, ProducerOptions, TopicSpec
from utils.kafka.reading import assign_from_end
from utils.kafka.topics import replication_for
from utils.scoring import load_scorer
from utils.settings import KafkaSettings

MODES = ("echo-confluent", "predictor-confluent")
CLUSTER_PORT = 39092
PLAN = {
    "throughput_requests": {"predictor": 50_000, "echo": 50_000},
    "latency_rates": [1000],
    "latency_seconds": 10,
    "hot_swap": False,
    "memory": False,
}


def cluster_script(command: str, state_dir: Path) -> None:
    env = {
        **os.environ,
        "KAFKA_NODES": "3",
        "KAFKA_PORT": str(CLUSTER_PORT),
        "KAFKA_CONTROLLER_PORT": str(CLUSTER_PORT + 1),
        "KAFKA_SASL_PORT": "",
        "KAFKA_HEAP": "256m",
        "KAFKA_STATE_DIR": str(state_dir),
    }
    subprocess.run(["bash", str(ROOT / "scripts" / "kafka.sh"), command], env=env, check=True)


def round_trip(kafka: KafkaSettings, samples: int = 200) -> dict:
    """One record at a time, sent with acks=all to a topic replicated as the pipeline's are, then
    read back by a read_committed reader: what replication itself costs, without load."""
    admin = create_admin(kafka)
    topic = f"bench-round-trip-{uuid.uuid4().hex[:6]}"
    try:
        replication = replication_for(kafka, len(admin.brokers()))
        in_sync = {} if replication.min_insync is None else {"min.insync.replicas": str(replication.min_insync)}
        admin.create_topics([TopicSpec(topic, 1, in_sync, replication_factor=replication.factor)])
    finally:
        admin.close()
    producer = create_producer(kafka, ProducerOptions("bench-round-trip"))
    consumer = create_consumer(kafka, ConsumerOptions("bench-round-trip", fetch_max_wait_ms=10, read_committed=True))
    assign_from_end(consumer, topic)
    acknowledged, read = [], []
    try:
        for seq in range(samples):
            value = f"round-trip-{seq}".encode()
            started = time.perf_counter()
            producer.send(topic, value).result(timeout_s=30)
            acknowledged.append((time.perf_counter() - started) * 1000)
            while not any(record.value == value for record in consumer.poll(0.5)):
                pass
            read.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)
    finally:
        producer.close()
        consumer.close()
    return {
        "acknowledged_p50_ms": round(float(np.percentile(acknowledged, 50)), 2),
        "acknowledged_p99_ms": round(float(np.percentile(acknowledged, 99)), 2),
        "read_back_p50_ms": round(float(np.percentile(read, 50)), 2),
        "read_back_p99_ms": round(float(np.percentile(read, 99)), 2),
    }


def figures(result: dict) -> dict:
    latency = result["latency"]["1000"]
    return {"per_second": result["throughput"]["per_second"], "p50_ms": latency["p50"], "p99_ms": latency["p99"]}


def main() -> None:
    single = settings_from(KafkaSettings).bootstrap_servers
    cluster = ",".join(f"localhost:{CLUSTER_PORT + 100 * i}" for i in range(3))
    workdir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    store = prepare_store(workdir / "models")
    spec = load_scorer(store, 1).spec
    stream = load_dataset(spec).stream
    rows = (frame_to_records(stream, spec), [int(label) for label in labels_of(stream)])
    report: dict = {"machine": describe_machine(), "plan": PLAN, "single": {}, "cluster": {}, "ratios": {}}
    cluster_script("start", workdir / "cluster")
    try:
        for target, bootstrap in (("single", single), ("cluster", cluster)):
            os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap  # the services the benchmark starts
            kafka = KafkaSettings(bootstrap_servers=bootstrap)
            report[target]["round_trip"] = round_trip(kafka)
            print(f"== one record at a time on {target}: {report[target]['round_trip']}", flush=True)
            for mode in MODES:
                print(f"== {mode} on {target} ({bootstrap})", flush=True)
                report[target][mode] = figures(benchmark_mode(mode, PLAN, kafka, store, rows, workdir))
    finally:
        cluster_script("stop", workdir / "cluster")
        shutil.rmtree(workdir, ignore_errors=True)
    report["ratios"]["round_trip"] = {
        name: round(report["cluster"]["round_trip"][name] / report["single"]["round_trip"][name], 2)
        for name in report["single"]["round_trip"]
    }
    for mode in MODES:
        one, three = report["single"][mode], report["cluster"][mode]
        report["ratios"][mode] = {name: round(three[name] / one[name], 2) for name in one}
    report["when"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    print(f"{'mode':<22}{'node':>9}{'answers/s':>12}{'p50 ms':>9}{'p99 ms':>9}")
    for mode in MODES:
        for target in ("single", "cluster", "ratios"):
            row = report[target][mode]
            print(f"{mode:<22}{target:>9}{row['per_second']:>12}{row['p50_ms']:>9}{row['p99_ms']:>9}")
    for target in ("single", "cluster", "ratios"):
        print(f"one record at a time, {target}: {report[target]['round_trip']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cluster.json").write_text(json.dumps(report, indent=1))
    print(f"written {RESULTS / 'cluster.json'}")


if __name__ == "__main__":
    main()
