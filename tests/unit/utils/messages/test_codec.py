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
