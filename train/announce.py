"""Saying what changed on the model-events topic, and waiting until the broker has it: an
announcement moves every predictor, so it is sent before the step that follows it."""

from __future__ import annotations

import threading

from utils.kafka.health import flush_or_wait
from utils.kafka.interface import Producer
from utils.messages.codec import encode
from utils.messages.events import ModelEvent


class Announcer:
    def __init__(self, producer: Producer, topic: str, stop: threading.Event):
        self.producer = producer
        self.topic = topic
        self.stop = stop

    def announce(self, event: ModelEvent) -> None:
        self.producer.send(self.topic, encode(event.to_dict()))
        flush_or_wait(self.producer, self.stop, event.EVENT)
