"""Bytes -> JSON objects: every way a record can fail to be one has its code."""

import pytest

from utils.messages.codec import MessageError, decode_object


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"\xff\xfe", "invalid_encoding"),
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"text"', "not_an_object"),
        (None, "empty_message"),
    ],
)
def test_decode_object_rejects(raw, code):
    with pytest.raises(MessageError) as caught:
        decode_object(raw)
    assert caught.value.code == code


@pytest.mark.parametrize(
    "payload",
    [
        {"request_id": "r", "prediction": 1, "probability": 0.123456789012, "model_version": 3, "role": "champion"},
        {"request_id": "ü ✓ \u2028", "error": {"code": "invalid_type", "message": 'age must be "a number"'}},
        {"request_id": "r", "features": {"age": 39.0, "workclass": None, "n": 10**20}, "label": 1},
        {"nested": [1, 2.5, -0.0, 1e-300, True, None, "\x00"]},
    ],
)
def test_the_fast_encoder_writes_the_same_json(payload):
    """Byte for byte in ASCII; other characters as UTF-8 rather than \\u escapes (both valid JSON)."""
    import json

    from utils.messages.codec import encode, encode_fast

    assert json.loads(encode_fast(payload)) == json.loads(encode(payload))
    if encode(payload).decode("utf-8").isascii() and all(ord(c) < 128 for c in json.dumps(payload, ensure_ascii=False)):
        assert encode_fast(payload) == encode(payload)
