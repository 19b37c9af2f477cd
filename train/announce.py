"""Saying what changed on the model-events topic, and waiting until the broker has it: an
announcement moves every predictor, so it is sent before the step that follows it."""

from __future__ import annotations

import threading

from utils.kafka.health import flush_or_wait
from utils.kafka.interface import Producer
from utils.messages.codec import encode
from utils.messages.events import ModelEvent


class Announcer:
    def __init__(self, producer: Producer, topic: str, stop: threading.Event, timeout_s: float | None = None):
        self.producer = producer
        self.topic = topic
        self.stop = stop
        self.timeout_s = timeout_s  # None: wait out an outage (services); else give up with KafkaTimeout

    def announce(self, event: ModelEvent) -> None:
        self.producer.send(self.topic, encode(event.to_dict()))
        if self.timeout_s is None:
            flush_or_wait(self.producer, self.stop, event.EVENT)
        else:
            self.producer.flush(timeout_s=self.timeout_s)
