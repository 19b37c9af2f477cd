"""Bytes <-> JSON objects for every topic, and the one error that decoding raises.

Decoding never raises anything but `MessageError`, whose `code` and `message` say what the sender
must fix; the original exception is chained with `raise ... from`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Built once: json.dumps with options builds a new encoder per call, which shows on the hot path.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


class MessageError(ValueError):
    """A payload that does not follow its schema. `code` is stable; `message` is for humans."""

    def __init__(self, code: str, message: str, request_id: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


def encode(payload: Mapping[str, Any]) -> bytes:
    return _ENCODER.encode(payload).encode("utf-8")


def decode_object(raw: bytes | None) -> dict:
    """Bytes -> JSON object, or MessageError saying why not.

    NaN, Infinity and -Infinity (which Python's json.dumps writes) are read as floats, so that the
    schema can name the field that holds one instead of refusing the whole record."""
    if raw is None:
        raise MessageError("empty_message", "the record has no value")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MessageError(
            "invalid_encoding", f"the value is not UTF-8 text ({error.reason} at byte {error.start})"
        ) from error
    try:
        payload = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise MessageError("invalid_json", f"the value is not valid JSON ({error})") from error
    if not isinstance(payload, dict):
        raise MessageError("not_an_object", f"expected a JSON object, got {type(payload).__name__}")
    return payload
