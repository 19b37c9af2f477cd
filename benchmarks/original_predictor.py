"""The original project's per-message path, as a baseline: one record at a time, a one-row pandas
DataFrame transformed with a `.apply` per column, a one-row LightGBM predict through pandas, and a
producer flush() after every answer. Same model, same topics, same answer format.
Run by benchmarks/pipeline.py."""

from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import dataclass

import pandas as pd

from utils.cli import settings_from
from utils.features import crossed_name
from utils.kafka.clients import create_consumer, create_producer
from utils.kafka.interface import ConsumerOptions, ProducerOptions
from utils.kafka.offsets import commit_offsets
from utils.model_store import ModelStore
from utils.scoring import DECISION_THRESHOLD, load_scorer
from utils.settings import CommonSettings, option


@dataclass(frozen=True)
class OriginalSettings:
    common: CommonSettings = CommonSettings()
    group_id: str = option("original", "consumer group")


def main() -> None:
    settings = settings_from(OriginalSettings, sys.argv[1:], description=__doc__)
    common = settings.common
    store = ModelStore(common.model_store)
    scorer = load_scorer(store, store.require(store.current_version()))
    ranges, categories = scorer.preprocessor.numeric_ranges, scorer.preprocessor.categories
    layout = scorer.preprocessor.layout
    codes = {name: {value: code for code, value in enumerate(values, start=1)} for name, values in categories.items()}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    producer = create_producer(common.kafka, ProducerOptions("original"))
    consumer = create_consumer(common.kafka, ConsumerOptions("original", settings.group_id))
    consumer.subscribe(common.topics.app_messages)
    print("original ready", flush=True)
    try:
        while not stop.is_set():
            records = consumer.poll(0.1)
            if records:
                for record in records:
                    message = json.loads(record.value or b"{}")
                    row = pd.DataFrame([message["data"]])
                    for name in layout.numeric:
                        low, high = ranges[name]
                        row[name] = row[name].apply(lambda x, low=low, high=high: (x - low) / (high - low))
                    for left, right in layout.crosses:
                        row[crossed_name((left, right))] = row.apply(
                            lambda r, a=left, b=right: f"{r[a]}|{r[b]}", axis=1
                        )
                    for name in layout.categorical_columns:
                        row[name] = row[name].apply(lambda v, lookup=codes[name]: lookup.get(v, 0))
                    probability = float(scorer.booster.predict(row[list(layout.names)])[0])
                    answer = {
                        "request_id": message["request_id"],
                        "prediction": int(probability >= DECISION_THRESHOLD),
                        "probability": probability,
                        "model_version": scorer.version,
                    }
                    producer.send(common.topics.predictions, json.dumps(answer).encode(), record.key)
                    producer.flush()
                consumer.commit(commit_offsets(records))  # the original auto-committed every few seconds
    finally:
        consumer.close()
        producer.close(timeout_s=5)


if __name__ == "__main__":
    main()
