import json
import logging

import pytest

from utils.logs import JsonFormatter


@pytest.mark.parametrize(
    "message, event, fields",
    [
        ("model swapped from_version=1 to_version=2", "model swapped", {"from_version": "1", "to_version": "2"}),
        ("no model version in /tmp/x: run initialize", "no model version in /tmp/x: run initialize", {}),
    ],
)
def test_json_lines_split_event_and_fields(message, event, fields):
    record = logging.LogRecord("utils.x", logging.INFO, __file__, 1, message, None, None)
    entry = json.loads(JsonFormatter("predictor").format(record))
    assert entry["service"] == "predictor" and entry["level"] == "INFO"
    assert entry["event"] == event and entry["fields"] == fields and entry["message"] == message
