"""The Confluent wire format that registry serializers write: a zero byte, the schema id (4 bytes,
big-endian), then the payload in the schema's format. Confluent Schema Registry, Apicurio (through
its ccompat API), Karapace and Redpanda all read and write it."""

from __future__ import annotations

import struct

MAGIC = 0
HEADER_SIZE = 5
_HEADER = struct.Struct(">bI")


def is_framed(value: bytes | None) -> bool:
    """True for a value that starts like the wire format (a JSON text never starts with a zero byte)."""
    return value is not None and len(value) >= HEADER_SIZE and value[0] == MAGIC


def schema_id_of(value: bytes) -> int:
    """The schema id of a framed value (`is_framed` first)."""
    return _HEADER.unpack_from(value)[1]


def payload_of(value: bytes) -> bytes:
    return value[HEADER_SIZE:]


def frame(schema_id: int, payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, schema_id) + payload
