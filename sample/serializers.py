"""How the sample app writes its requests and reads the answers: plain JSON, or through a schema
registry (docs/schema-registry.md) as a team's real app would, in the format of the newest schema
registered under the requests' subject (initialize.py registers it).

With `--kafka-client confluent` the registry path is confluent-kafka's own serializers
(JSONSerializer, AvroSerializer and their deserializers); with kafka-python, the pipeline's small
wire-format codec (utils/schema_registry/). Either way the bytes go through our Kafka adapters."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from typing import Any, Protocol

import fastavro

from utils.messages.codec import MessageError, decode_object, encode
from utils.schema_registry import wire
from utils.schema_registry.client import RegisteredSchema, RegistryClient, RegistryError
from utils.schema_registry.schemas import AvroAnswers, AvroReader, avro_request, subjects
from utils.settings import CommonSettings, Topics
from utils.spec import DatasetSpec

log = logging.getLogger(__name__)


class Serializers(Protocol):
    name: str  # for the summary: plain, json or avro, and by whose serializers

    def request(self, payload: Mapping[str, Any]) -> bytes:
        """A request (PredictionRequest.to_dict) as the record's value."""
        ...

    def answer(self, value: bytes | None) -> dict:
        """An answer record's value as a JSON object; MessageError if it cannot be read."""
        ...


class PlainJson:
    name = "plain"

    def request(self, payload: Mapping[str, Any]) -> bytes:
        return encode(payload)

    def answer(self, value: bytes | None) -> dict:
        return decode_object(value)


class WireCodec:
    """The registry's wire format by our own codec: the newest request schema's id and format."""

    def __init__(self, client: RegistryClient, spec: DatasetSpec, latest: RegisteredSchema):
        self.client, self.spec, self.schema_id, self.format = client, spec, latest.schema_id, latest.format
        self.name = f"{latest.format} (wire format, our codec)"
        self._writer = AvroReader.of(latest.text).parsed if latest.format == "avro" else None
        self._answers = AvroAnswers()
        self._answer_formats: dict[int, str] = {}

    def request(self, payload: Mapping[str, Any]) -> bytes:
        if self._writer is None:
            return wire.frame(self.schema_id, encode(payload))
        out = io.BytesIO()
        fastavro.schemaless_writer(out, self._writer, avro_request(payload, self.spec))
        return wire.frame(self.schema_id, out.getvalue())

    def answer(self, value: bytes | None) -> dict:
        if value is None or not wire.is_framed(value):
            return decode_object(value)  # a plain answer (the predictor could not name its schema)
        schema_id = wire.schema_id_of(value)
        if schema_id not in self._answer_formats:
            try:
                self._answer_formats[schema_id] = self.client.schema(schema_id).format
            except RegistryError as error:
                raise MessageError("schema_unavailable", str(error)) from error
        if self._answer_formats[schema_id] == "json":
            return decode_object(wire.payload_of(value))
        try:
            return self._answers.decode(wire.payload_of(value))
        except Exception as error:  # fastavro's own errors
            raise MessageError("schema_mismatch", repr(error)) from error


class ConfluentSerializers:
    """confluent-kafka's serializers, configured as an app that does not register schemas itself:
    it writes with the subject's newest version."""

    def __init__(self, url: str, spec: DatasetSpec, topics: Topics, latest: RegisteredSchema, timeout_s: float):
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
        from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
        from confluent_kafka.serialization import MessageField, SerializationContext

        client = SchemaRegistryClient({"url": url, "timeout": timeout_s})
        conf = {"auto.register.schemas": False, "use.latest.version": True}
        self.spec = spec
        self.avro = latest.format == "avro"
        self.name = f"{latest.format} (wire format, confluent-kafka's serializers)"
        self._context = SerializationContext(topics.app_messages, MessageField.VALUE)
        self._answers_context = SerializationContext(topics.predictions, MessageField.VALUE)
        self._serialize: Any
        self._deserialize: Any
        if self.avro:
            self._serialize = AvroSerializer(client, latest.text, conf=conf)
            self._deserialize = AvroDeserializer(client)
        else:
            self._serialize = JSONSerializer(latest.text, client, conf=conf)
            self._deserialize = JSONDeserializer(None, schema_registry_client=client)

    def request(self, payload: Mapping[str, Any]) -> bytes:
        record = avro_request(payload, self.spec) if self.avro else dict(payload)
        return self._serialize(record, self._context)

    def answer(self, value: bytes | None) -> dict:
        if value is None or not wire.is_framed(value):
            return decode_object(value)
        try:
            found = self._deserialize(value, self._answers_context)
        except Exception as error:  # the serializers raise SerializationError, SchemaRegistryError...
            raise MessageError("schema_mismatch", repr(error)) from error
        if not isinstance(found, dict):
            raise MessageError("not_an_object", f"expected an answer, got {type(found).__name__}")
        return found


def serializers_for(common: CommonSettings, spec: DatasetSpec) -> Serializers:
    """Plain JSON without a registry URL; else the registry's format, by the client's serializers.
    Raises RegistryError when the registry cannot say (SchemaNotFound: nothing registered yet)."""
    url = common.schema_registry_url
    if url is None:
        return PlainJson()
    request_subject, _ = subjects(common.topics)
    client = RegistryClient(url, common.schema_registry_timeout_s)
    latest = client.latest(request_subject)
    if common.kafka.client == "confluent":
        return ConfluentSerializers(url, spec, common.topics, latest, common.schema_registry_timeout_s)
    return WireCodec(client, spec, latest)
