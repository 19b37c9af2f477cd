"""The sample app: stream users (the serving spec's rows, or a CSV file's) into the pipeline and
read their predictions back.

Requests are sent at a fixed rate while answers are read in the same loop, so the latency of each
answer is measured from the moment its request was handed to the producer.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sample.serializers import Serializers, serializers_for
from utils.data import decode, default_spec, frame_of, frame_to_records, labels_of, load_dataset, parse_csv, read_file
from utils.form import Form
from utils.kafka.clients import create_consumer, create_producer
from utils.kafka.health import flush_or_wait
from utils.kafka.interface import Consumer, ConsumerOptions, ProducerOptions
from utils.kafka.reading import assign_from_end
from utils.kafka.topics import wait_for_broker
from utils.messages.codec import MessageError
from utils.messages.requests import Explanation, Prediction, PredictionError, PredictionRequest, answer_from_dict
from utils.model_store import ModelStore
from utils.schema_registry.client import SchemaNotFound
from utils.scoring import spec_of
from utils.settings import SampleAppSettings
from utils.spec import DatasetSpec, Label

log = logging.getLogger(__name__)

ADULT_LABEL = "income_bracket"  # the demo's form: its answers read as offers


@dataclass
class Tally:
    """What came back, request by request."""

    sent_at: dict[str, float] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    answers: dict[str, Prediction | PredictionError] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    model_versions: list[int] = field(default_factory=list)
    repeats: int = 0
    foreign: int = 0

    def record(self, answer: Prediction | PredictionError) -> bool:
        """True if this is the first answer to one of our requests."""
        if answer.request_id not in self.sent_at:
            self.foreign += 1  # another client's request, or a previous run's
            return False
        if answer.request_id in self.answers:
            self.repeats += 1  # at-least-once delivery: a replayed batch answers again
            return False
        self.answers[answer.request_id] = answer
        self.latencies_ms.append((time.monotonic() - self.sent_at[answer.request_id]) * 1000)
        if isinstance(answer, Prediction) and answer.model_version not in self.model_versions:
            self.model_versions.append(answer.model_version)
        return True

    def summary(self) -> dict:
        predictions = [a for a in self.answers.values() if isinstance(a, Prediction)]
        correct = [a.prediction == self.labels[a.request_id] for a in predictions if a.request_id in self.labels]
        latencies = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        return {
            "sent": len(self.sent_at),
            "answered": len(self.answers),
            "unanswered": len(self.sent_at) - len(self.answers),
            "errors": len(self.answers) - len(predictions),
            "repeated_answers": self.repeats,
            "accuracy": round(float(np.mean(correct)), 4) if correct else None,
            "latency_ms": {f"p{q}": _round(np.percentile(latencies, q)) for q in (50, 95, 99)},
            "model_versions": self.model_versions,
        }


def _round(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 2)


def describe(answer: Prediction | PredictionError, label: Label | None = None) -> str:
    """One answer as the app acts on it (Adult: send an offer or not; another form: its label's value)."""
    if isinstance(answer, PredictionError):
        return f"error {answer.code}: {answer.message}"
    said = f"(p={answer.probability:.2f}, model v{answer.model_version})"
    if label is None or label.column == ADULT_LABEL:
        action = "high income: send offer" if answer.prediction == 1 else "low income: no offer"
    else:
        value = label.positive[0] if answer.prediction == 1 else label.negative[0]
        action = f"{label.column}: {value}"
    return f"{action} {said}"


def describe_reasons(explanation: Explanation) -> str:
    """The largest contributions to a decision, as indented lines (log-odds: + toward the positive answer)."""
    lines = [f"          {name:<28} {value:+.3f}" for name, value in explanation.top]
    lines.append(f"          {'(all other fields)':<28} {explanation.other:+.3f}")
    lines.append(f"          {'(average user)':<28} {explanation.bias:+.3f}  = log-odds {explanation.raw_score:+.3f}")
    return "\n".join(lines)


def serving_spec(store: ModelStore) -> DatasetSpec:
    """The form the serving version takes (the requests must fit it), or Adult's without a store."""
    version = store.current_version()
    if version is None:
        return default_spec()
    return spec_of(version, store.read_verified(version))


def rows_to_send(spec: DatasetSpec, data: Path | None) -> tuple[list[dict[str, Any]], list[int | None]]:
    """The forms to send and their labels (None: unknown): the rows of a CSV file that fits the
    spec, or the spec's own stream (Adult: the first half of adult.test)."""
    if data is None:
        stream = load_dataset(spec).stream
        return frame_to_records(stream, spec), [int(label) for label in labels_of(stream)]
    raw = parse_csv(decode(read_file(data), data.name), name=data.name)
    labelled = spec.label.column in raw.columns
    frame = frame_of(spec, raw, data.name, labelled=labelled)
    labels: list[int | None] = [int(label) for label in labels_of(frame)] if labelled else [None] * len(frame)
    return frame_to_records(frame, spec), labels


def run(settings: SampleAppSettings, stop: threading.Event) -> int:
    common = settings.common
    spec = serving_spec(ModelStore(common.model_store))
    form = Form(spec)
    rows, labels = rows_to_send(spec, settings.data)
    if not rows:
        log.error("no rows to send in %s", settings.data)
        return 2
    try:
        serializers = serializers_for(common, spec)
    except SchemaNotFound as error:
        log.error("no request schema in the schema registry (run initialize.py with it first): %s", error)
        return 2
    wait_for_broker(common.kafka, common.topics, stop, (common.topics.app_messages, common.topics.predictions))
    producer = create_producer(common.kafka, ProducerOptions("sample-app"))
    consumer = create_consumer(common.kafka, ConsumerOptions("sample-app", read_committed=True))
    tally = Tally()
    try:
        assign_from_end(consumer, common.topics.predictions)
        interval = 1.0 / settings.rate if settings.rate > 0 else 0.0
        started = time.monotonic()
        for i in range(settings.n):
            if stop.is_set():
                break
            index = (settings.start + i) % len(rows)
            request = PredictionRequest(str(uuid.uuid4()), rows[index], labels[index], settings.explain)
            producer.send(
                common.topics.app_messages, serializers.request(request.to_dict(form)), request.request_id.encode()
            )
            tally.sent_at[request.request_id] = time.monotonic()
            if (label := labels[index]) is not None:
                tally.labels[request.request_id] = label
            # Read answers until the next request is due (at rate 0, only what is already there).
            due = started + (i + 1) * interval
            _read_answers(consumer, tally, settings, serializers, spec.label, max(0.0, due - time.monotonic()))
        flush_or_wait(producer, stop, "requests")
        deadline = time.monotonic() + settings.timeout_s
        while len(tally.answers) < len(tally.sent_at) and time.monotonic() < deadline and not stop.is_set():
            _read_answers(consumer, tally, settings, serializers, spec.label, min(0.5, deadline - time.monotonic()))
    finally:
        producer.close(timeout_s=10)
        consumer.close()
    summary = tally.summary() | {"format": serializers.name}
    print(json.dumps(summary, indent=2))
    if settings.summary_json is not None:
        settings.summary_json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["unanswered"] == 0 else 1


def _read_answers(
    consumer: Consumer, tally: Tally, settings: SampleAppSettings, serializers: Serializers, label: Label, wait_s: float
) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        for record in consumer.poll(max(0.0, deadline - time.monotonic())):
            try:
                answer = answer_from_dict(serializers.answer(record.value))
            except MessageError as error:
                log.warning("unreadable answer offset=%s error=%s", record.offset, error)
                continue
            if tally.record(answer) and not settings.quiet:
                print(f"{answer.request_id[:8]}  {describe(answer, label)}", flush=True)
                if isinstance(answer, Prediction) and answer.prediction == 1 and answer.explanation is not None:
                    print(describe_reasons(answer.explanation), flush=True)
        if time.monotonic() >= deadline:
            return
