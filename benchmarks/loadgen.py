"""Load generator: send prepared requests at a fixed rate (or as fast as possible) and time every
answer. Each request id carries its sequence number, so send and receive times pair up without
shared state between the sending and the receiving thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from utils.form import Form
from utils.kafka.clients import create_consumer, create_producer
from utils.kafka.interface import Consumer, ConsumerOptions, Partition, Producer, ProducerOptions
from utils.kafka.reading import assign_from_end
from utils.messages.codec import encode
from utils.messages.requests import PredictionRequest
from utils.schema_registry import wire
from utils.schema_registry.schemas import AvroAnswers
from utils.settings import KafkaSettings, Topics


def build_payloads(
    records: list[dict],
    count: int,
    run_id: str,
    encode_request: Callable[[dict], bytes] = encode,
    labelled: tuple[list[int], Form] | None = None,
) -> list[bytes]:
    """`count` requests cycling through `records`, with ids '<run>-<seq>' (plain JSON, or as
    `encode_request` writes them: the registry's wire format, say); with `labelled` (the records'
    labels and their form) each carries its label."""
    if labelled is None:
        return [
            encode_request(PredictionRequest(f"{run_id}-{seq}", records[seq % len(records)]).to_dict())
            for seq in range(count)
        ]
    labels, form = labelled
    return [
        encode_request(
            PredictionRequest(f"{run_id}-{seq}", records[seq % len(records)], labels[seq % len(records)]).to_dict(form)
        )
        for seq in range(count)
    ]


def read_back_rate(kafka: KafkaSettings, topic: str, timeout_s: float = 30.0) -> float:
    """Records per second this load generator reads from `topic` from its beginning to its end."""
    consumer = create_consumer(kafka, ConsumerOptions("loadgen-read-back", max_poll_records=5000))
    try:
        partitions = [Partition(topic, p) for p in sorted(consumer.partitions_for(topic))]
        total = sum(consumer.end_offsets(partitions).values())
        consumer.assign(partitions)
        consumer.seek_to_beginning(partitions)
        read, started = 0, time.perf_counter()
        deadline = started + timeout_s
        while read < total and time.perf_counter() < deadline:
            read += len(consumer.poll(0.5))
        return read / (time.perf_counter() - started)
    finally:
        consumer.close()


_AVRO_ANSWERS: list[AvroAnswers] = []


def read_answer(value: bytes | None) -> dict:
    """An answer in any format the predictor writes: plain JSON, or the wire format with JSON or Avro."""
    if value is None or not wire.is_framed(value):
        return json.loads(value or b"{}")
    payload = wire.payload_of(value)
    if payload[:1] == b"{":
        return json.loads(payload)
    if not _AVRO_ANSWERS:
        _AVRO_ANSWERS.append(AvroAnswers())
    return _AVRO_ANSWERS[0].decode(payload)


@dataclass
class LoadResult:
    sent: int
    sent_at: np.ndarray  # perf_counter seconds per sequence number (nan: not sent)
    received_at: np.ndarray  # first answer per sequence number (nan: none)
    answers: int = 0  # including repeats
    versions: list[int] = field(default_factory=list)
    repeated_at: list[float] = field(default_factory=list)  # perf_counter seconds of each repeated answer

    @property
    def answered(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.received_at)))

    def latency_ms(self) -> dict[str, float | None]:
        latency = (self.received_at - self.sent_at)[~np.isnan(self.received_at)] * 1000
        if not len(latency):
            return {"p50": None, "p95": None, "p99": None, "max": None}
        figures: dict[str, float | None] = {f"p{q}": round(float(np.percentile(latency, q)), 2) for q in (50, 95, 99)}
        return figures | {"max": round(float(latency.max()), 2)}

    def throughput(self) -> float:
        done = self.received_at[~np.isnan(self.received_at)]
        return self.answered / (done.max() - np.nanmin(self.sent_at)) if len(done) else 0.0

    def longest_gap_ms(self, start_s: float, end_s: float) -> float:
        """Longest pause between consecutive answers received in [start_s, end_s] of the run."""
        origin = np.nanmin(self.sent_at)
        return self.longest_gap_between_ms(origin + start_s, origin + end_s)

    def longest_gap_between_ms(self, start: float, end: float) -> float:
        """Longest pause between consecutive answers received between two perf_counter times, counting
        from `start` to the first answer and from the last one to `end`: a window without answers
        is one gap."""
        times = np.sort(self.received_at[~np.isnan(self.received_at)])
        window = np.concatenate([[start], times[(times > start) & (times < end)], [end]])
        return round(float(np.diff(window).max() * 1000), 2)

    def repeats_between(self, start: float, end: float) -> int:
        """Answers received again between two perf_counter times."""
        return sum(1 for at in self.repeated_at if start <= at < end)


def run_load(
    kafka: KafkaSettings,
    topics: Topics,
    payloads: list[bytes],
    rate: float,
    drain_timeout_s: float = 60.0,
    during: Callable[[float], None] | None = None,
    until: threading.Event | None = None,
    drain_stall_s: float | None = None,
) -> LoadResult:
    """Send `payloads` at `rate` per second (0: as fast as possible), or until `until` is set, and
    wait for the answers of those sent: at most `drain_timeout_s`, and (with `drain_stall_s`) no
    longer than that without a new answer, so that a service still working off a backlog is waited
    for and one that stopped answering is not. `during(elapsed_s)` is called from the sending loop,
    e.g. to trigger model swaps."""
    count = len(payloads)
    sent_at = np.full(count, np.nan)
    received_at = np.full(count, np.nan)
    result = LoadResult(0, sent_at, received_at)
    consumer = create_consumer(kafka, ConsumerOptions("loadgen", fetch_max_wait_ms=10, read_committed=True))
    partitions = assign_from_end(consumer, topics.predictions)
    producer = create_producer(kafka, ProducerOptions("loadgen", linger_ms=2, batch_bytes=64 * 1024))
    _wait_until_fetching(producer, consumer, partitions)
    done = threading.Event()
    receiver = threading.Thread(target=_receive, args=(consumer, result, done), daemon=True)
    receiver.start()
    started = time.perf_counter()
    for seq, payload in enumerate(payloads):
        if until is not None and until.is_set():
            break
        if rate > 0:
            delay = started + seq / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        sent_at[seq] = time.perf_counter()
        producer.send(topics.app_messages, payload)
        result.sent = seq + 1
        if during is not None and seq % 100 == 0:
            during(time.perf_counter() - started)
    producer.flush()
    deadline = time.perf_counter() + drain_timeout_s
    answered, last_progress = result.answered, time.perf_counter()
    while result.answered < result.sent and time.perf_counter() < deadline:
        time.sleep(0.05)
        if result.answered > answered:
            answered, last_progress = result.answered, time.perf_counter()
        elif drain_stall_s is not None and time.perf_counter() - last_progress > drain_stall_s:
            break
    done.set()
    receiver.join(timeout=5)
    producer.close(timeout_s=5)
    consumer.close()
    return result


PROBE = b'{"request_id": "loadgen-probe"}'


def _wait_until_fetching(
    producer: Producer, consumer: Consumer, partitions: list[Partition], timeout_s: float = 30.0
) -> None:
    """Return once a probe written to each partition of the answers' topic has been read back: the
    producer is connected and the consumer is fetching from every leader. Without it librdkafka's
    first fetches start a few hundred milliseconds in, and the run's first requests look that slow."""
    for partition in partitions:
        producer.send(partition.topic, PROBE, partition=partition.partition)
    producer.flush(timeout_s)
    waiting = set(partitions)
    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        for record in consumer.poll(0.05):
            if record.value == PROBE:
                waiting.discard(Partition(record.topic, record.partition))
    if waiting:
        raise TimeoutError(f"the load generator read no probe back from {sorted(waiting)} in {timeout_s:.0f}s")


def _receive(consumer: Consumer, result: LoadResult, done: threading.Event) -> None:
    while not done.is_set():
        records = consumer.poll(0.05)
        if records:
            now = time.perf_counter()
            for record in records:
                if record.value == PROBE:
                    continue
                answer = read_answer(record.value)
                seq = int(answer["request_id"].rsplit("-", 1)[1])
                result.answers += 1
                if np.isnan(result.received_at[seq]):
                    result.received_at[seq] = now
                else:
                    result.repeated_at.append(now)
                version = answer.get("model_version")
                if version is not None and version not in result.versions:
                    result.versions.append(version)
