"""Where a service's slow answers are: start one benchmark mode (benchmarks/pipeline.py), warm it,
then three runs at a fixed rate; per run p50/p99/max latency and the longest gap between answers,
and each stretch of requests slower than 50 ms (when in the run, how many, the worst).

    python -m benchmarks.latency_timeline predictor-confluent 1000 10 [extra arguments of the mode]

Labelled modes (predictor-labelled*, echo-two*) send labelled requests, as in the benchmark.

Each slow stretch is split by the records' own timestamps into where its requests waited: the
requests' topic is created with the broker's append time (`LogAppendTime`), the answers keep the
time the service handed them to its client (`CreateTime`), so per request
  to_broker  load generator's send -> the request appended by the broker
  in_service appended -> the answer handed to the service's producer (its fetch, wait and work)
  to_reader  handed over -> the answer read by the load generator (the service's producer, the
             broker and the reader's fetch)
in the stretch against the run's median. The clocks are the same machine's.

Nothing is written: it prints, to find stalls (a garbage collection, a background job) that a
percentile only hints at.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import confluent_kafka
import numpy as np

from benchmarks import pipeline
from benchmarks.loadgen import build_payloads, run_load
from utils.cli import settings_from
from utils.data import frame_to_records, labels_of, load_dataset
from utils.kafka.clients import create_admin
from utils.kafka.interface import TopicSpec
from utils.kafka.topics import ensure_topics
from utils.scoring import load_scorer
from utils.settings import KafkaSettings, Topics

SLOW_MS = 50.0
RUNS = 3
GC_PAUSES, FULL_COLLECTIONS = "pipeline_gc_pause_seconds", 'generation="2",'


def main() -> None:
    if len(sys.argv) < 4:
        print(__doc__)
        raise SystemExit(2)
    mode, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    pipeline.COMMANDS[mode] = pipeline.COMMANDS[mode] + sys.argv[4:]
    kafka = KafkaSettings(bootstrap_servers=settings_from(KafkaSettings).bootstrap_servers)
    workdir = Path(tempfile.mkdtemp(prefix="bench-timeline-"))
    store = pipeline.prepare_store(workdir / "models")
    spec = load_scorer(store, 1).spec
    stream = load_dataset(spec).stream
    records = frame_to_records(stream, spec)
    labelled = pipeline.labelled_for(mode, spec, [int(label) for label in labels_of(stream)])
    prefix = f"timeline-{uuid.uuid4().hex[:6]}-"
    topics = Topics().with_prefix(prefix)
    create_with_append_time(kafka, topics.app_messages, Topics().partitions()[Topics().app_messages])
    ensure_topics(kafka, topics)
    process = pipeline.start(mode, prefix, store, workdir)
    try:
        run_load(kafka, topics, build_payloads(records, 2000, "warm", labelled=labelled), rate=0)
        for run in range(RUNS):
            batches_before = pipeline.batch_seconds_buckets(process)
            full_collections_before = pipeline.histogram_buckets(process, GC_PAUSES, FULL_COLLECTIONS)
            payloads = build_payloads(records, int(rate * seconds), f"run{run}", labelled=labelled)
            result = run_load(kafka, topics, payloads, rate=rate)
            wall_minus_perf = time.time() - time.perf_counter()
            latency = (result.received_at - result.sent_at) * 1000
            to_broker, in_service, to_reader = where_requests_waited(
                kafka, topics, f"run{run}-", result.sent_at + wall_minus_perf, result.received_at + wall_minus_perf
            )
            at = result.sent_at - np.nanmin(result.sent_at)
            print(
                f"run {run}: p50={np.nanpercentile(latency, 50):.1f} p99={np.nanpercentile(latency, 99):.1f} "
                f"max={np.nanmax(latency):.1f} longest_gap={result.longest_gap_ms(0, seconds):.1f} ms"
            )
            batches_after = pipeline.batch_seconds_buckets(process)
            if batches_before is not None and batches_after is not None:
                # A stall with no slow batch was spent outside the predictor's batch work: waiting
                # for records to arrive, for the cores, or for the broker's acknowledgements.
                total, over = counts_over(batches_before, batches_after)
                print(
                    f"   batches {total:.0f}: over 20 ms {over[20]:.0f}, over 50 ms {over[50]:.0f}, "
                    f"over 100 ms {over[100]:.0f}"
                )
            full_collections_after = pipeline.histogram_buckets(process, GC_PAUSES, FULL_COLLECTIONS)
            if full_collections_before is not None and full_collections_after is not None:
                total, over = counts_over(full_collections_before, full_collections_after)
                print(f"   full garbage collections {total:.0f}: over 20 ms {over[20]:.0f}, over 50 ms {over[50]:.0f}")
            slow = np.where(latency > SLOW_MS)[0]
            for stretch in np.split(slow, np.where(np.diff(slow) > 20)[0] + 1) if len(slow) else []:
                worst = stretch[np.argmax(latency[stretch])]
                print(
                    f"   slower than {SLOW_MS:.0f} ms: t={at[stretch[0]]:.2f}-{at[stretch[-1]]:.2f} s, "
                    f"{len(stretch)} requests, worst {latency[stretch].max():.0f} ms = to_broker "
                    f"{to_broker[worst]:.0f} + in_service {in_service[worst]:.0f} + to_reader {to_reader[worst]:.0f} "
                    f"(run medians {np.nanmedian(to_broker):.0f} / {np.nanmedian(in_service):.0f} / "
                    f"{np.nanmedian(to_reader):.0f})"
                )
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def counts_over(before: dict[float, float], after: dict[float, float]) -> tuple[float, dict[int, float]]:
    """From two readings of a cumulative histogram in seconds: how many were observed between them,
    and how many of those took over 20, 50 and 100 ms."""
    between = {bound: after[bound] - before.get(bound, 0.0) for bound in after}
    total = between.get(float("inf"), 0.0)
    return total, {ms: total - between.get(ms / 1000, total) for ms in (20, 50, 100)}


def create_with_append_time(kafka: KafkaSettings, topic: str, partitions: int) -> None:
    """The requests' topic, stamped by the broker on append (the services read it as any other)."""
    admin = create_admin(kafka)
    try:
        admin.create_topics([TopicSpec(topic, partitions, {"message.timestamp.type": "LogAppendTime"})])
    finally:
        admin.close()


def read_timestamps(kafka: KafkaSettings, topic: str, id_prefix: str) -> dict[int, float]:
    """Sequence number -> the record's timestamp (wall seconds), for the requests or answers of one
    run (ids '<id_prefix><seq>'), read from the topic's beginning to its end."""
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": kafka.bootstrap_servers, "group.id": f"timeline-{uuid.uuid4().hex[:6]}"}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p), timeout=30)[1] for p in metadata
        }
        consumer.assign([confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in metadata])
        stamps: dict[int, float] = {}
        waiting = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 60
        while waiting and time.monotonic() < deadline:
            for message in consumer.consume(5000, 0.5):
                partition, offset = message.partition(), message.offset()
                if message.error() is not None or partition is None or offset is None:
                    continue
                if offset >= ends[partition] - 1:
                    waiting.discard(partition)
                request_id = str(json.loads(message.value() or b"{}").get("request_id", ""))
                if request_id.startswith(id_prefix):
                    stamps.setdefault(int(request_id[len(id_prefix) :]), message.timestamp()[1] / 1000)
        return stamps
    finally:
        consumer.close()


def where_requests_waited(
    kafka: KafkaSettings, topics: Topics, id_prefix: str, sent: np.ndarray, received: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per request, ms: send -> appended (to_broker), appended -> answer handed over (in_service),
    handed over -> read (to_reader); nan where a timestamp is missing. Wall-clock seconds in."""
    appended = np.full(len(sent), np.nan)
    handed = np.full(len(sent), np.nan)
    for seq, at in read_timestamps(kafka, topics.app_messages, id_prefix).items():
        appended[seq] = at
    for seq, at in read_timestamps(kafka, topics.predictions, id_prefix).items():
        handed[seq] = at
    return (appended - sent) * 1000, (handed - appended) * 1000, (received - handed) * 1000


if __name__ == "__main__":
    main()
