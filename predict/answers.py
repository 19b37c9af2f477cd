"""Answers as bytes, in the format their request came in (predict/batch.py `AnswerFormat`): plain
JSON, or the registry's wire format with the answer schema's id, in JSON or Avro."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from predict.batch import AnswerFormat
from predict.schema_cache import SchemaCache
from utils import metrics
from utils.messages.codec import encode_fast
from utils.schema_registry import wire
from utils.schema_registry.schemas import AvroAnswers

log = logging.getLogger(__name__)


class AnswerEncoder:
    def __init__(self, schemas: SchemaCache):
        self.schemas = schemas
        self._avro: AvroAnswers | None = None  # built at the first Avro answer

    def encode(self, answer: Mapping[str, Any], answer_format: AnswerFormat) -> bytes:
        if answer_format == "plain":
            return encode_fast(answer)
        schema_id = self.schemas.answer_id(answer_format)
        if schema_id is None:  # the registry cannot say now: an answer the app can read as JSON beats none
            metrics.PLAIN_FALLBACK_ANSWERS.inc()
            return encode_fast(answer)
        if answer_format == "json":
            return wire.frame(schema_id, encode_fast(answer))
        if self._avro is None:
            self._avro = AvroAnswers()
        return wire.frame(schema_id, self._avro.encode(answer))
