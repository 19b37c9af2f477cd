"""The contract suite needs the session's broker, and the private one for its SASL listener."""

import uuid
from typing import Any

import pytest

from tests.conftest import BOOTSTRAP, require_broker
from utils.kafka.clients import CLIENTS, create_admin, create_consumer, create_producer, create_transactional_producer
from utils.kafka.interface import Consumer, ConsumerOptions, Producer, ProducerOptions, TopicSpec, TransactionalProducer
from utils.settings import KafkaClient, KafkaSettings


@pytest.fixture(scope="session", autouse=True)
def broker_is_up():
    require_broker()


class Clients:
    """Producers and consumers of one library, built through the project's interface."""

    def __init__(self, kind: KafkaClient, bootstrap: str = BOOTSTRAP, **security: Any):
        self.kind = kind
        self.settings = KafkaSettings(bootstrap_servers=bootstrap, client=kind, **security)
        self.opened: list[Producer | Consumer] = []

    def producer(self, **options) -> Producer:
        producer = create_producer(self.settings, ProducerOptions(f"test-{self.kind}", **options))
        self.opened.append(producer)
        return producer

    def transactional_producer(self, transactional_id: str) -> TransactionalProducer:
        options = ProducerOptions(f"test-{self.kind}", transactional_id=transactional_id)
        producer = create_transactional_producer(self.settings, options)
        self.opened.append(producer)
        return producer

    def consumer(self, group_id: str | None = None, **options) -> Consumer:
        consumer = create_consumer(self.settings, ConsumerOptions(f"test-{self.kind}", group_id, **options))
        self.opened.append(consumer)
        return consumer

    def topic(self, partitions: int) -> str:
        name = f"contract-{self.kind}-{uuid.uuid4().hex[:8]}"
        admin = create_admin(self.settings)
        try:
            assert admin.create_topics([TopicSpec(name, partitions)]) == [name]
        finally:
            admin.close()
        return name

    def close_all(self) -> None:
        for client in reversed(self.opened):
            if isinstance(client, Producer):
                client.close(timeout_s=5)
            else:
                client.close()


@pytest.fixture(params=CLIENTS)
def clients(request):
    built = Clients(request.param)
    yield built
    built.close_all()
