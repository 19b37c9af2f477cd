"""Build a producer, consumer or admin client of the library the settings name (`--kafka-client`).

The adapters are imported on first use, so a service pays only for the library it runs on."""

from __future__ import annotations

import typing

from utils.kafka.interface import Admin, Consumer, ConsumerOptions, Producer, ProducerOptions, TransactionalProducer
from utils.settings import KafkaClient, KafkaSettings

CLIENTS: tuple[KafkaClient, ...] = typing.get_args(KafkaClient)


def create_producer(settings: KafkaSettings, options: ProducerOptions) -> Producer:
    if settings.client == "confluent":
        from utils.kafka.confluent import ConfluentProducer

        return ConfluentProducer(settings, options)
    from utils.kafka.kafka_python import KafkaPythonProducer

    return KafkaPythonProducer(settings, options)


def create_transactional_producer(settings: KafkaSettings, options: ProducerOptions) -> TransactionalProducer:
    """A producer with `options.transactional_id`, its transactions initialised (which fences any
    older producer with the same id)."""
    if settings.client == "confluent":
        from utils.kafka.confluent import ConfluentTransactionalProducer

        return ConfluentTransactionalProducer(settings, options)
    from utils.kafka.kafka_python import KafkaPythonTransactionalProducer

    return KafkaPythonTransactionalProducer(settings, options)


def create_consumer(settings: KafkaSettings, options: ConsumerOptions) -> Consumer:
    if settings.client == "confluent":
        from utils.kafka.confluent import ConfluentConsumer

        return ConfluentConsumer(settings, options)
    from utils.kafka.kafka_python import KafkaPythonConsumer

    return KafkaPythonConsumer(settings, options)


def create_admin(settings: KafkaSettings, client_id: str = "pipeline-admin") -> Admin:
    if settings.client == "confluent":
        from utils.kafka.confluent import ConfluentAdmin

        return ConfluentAdmin(settings, client_id)
    from utils.kafka.kafka_python import KafkaPythonAdmin

    return KafkaPythonAdmin(settings, client_id)
