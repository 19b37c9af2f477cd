import json
import logging
import sys

import pytest

from utils.kafka.health import BrokerHealth
from utils.logs import JsonFormatter, SafeTextFormatter, configure_logging


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


FORGED = "2026-11-28 01:00:00,000 ERROR service=predictor forged: admin password reset"
HOSTILE = [f"inj-1\n{FORGED}", f"inj-2\r{FORGED}", f"inj-3\u2028{FORGED}", "inj-4\x1b[2J", f"inj-5\x85{FORGED}"]


def refused(request_id: str) -> logging.LogRecord:
    return logging.LogRecord(
        "predict.service",
        logging.INFO,
        __file__,
        1,
        "request refused request_id=%s code=%s reason=%s",
        (request_id, "missing_field", "data lacks ['age']"),
        None,
    )


@pytest.mark.parametrize("request_id", HOSTILE)
def test_a_value_cannot_forge_a_text_log_line(request_id):
    line = SafeTextFormatter("%(asctime)s %(levelname)s service=predictor %(name)s: %(message)s").format(
        refused(request_id)
    )
    assert len(line.splitlines()) == 1 and not any(c in line for c in "\r\x1b\x85\u2028")
    assert line.endswith("code=missing_field reason=data lacks ['age']")


@pytest.mark.parametrize("request_id", HOSTILE)
def test_json_log_lines_stay_one_valid_object_with_unforgeable_fields(request_id):
    line = JsonFormatter("predictor").format(refused(request_id))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["fields"] == {"request_id": request_id, "code": "missing_field", "reason": "data lacks ['age']"}
    assert entry["event"] == "request refused"


def test_a_field_named_in_a_value_does_not_override_the_real_one():
    entry = json.loads(JsonFormatter("predictor").format(refused("x code=forged")))
    assert entry["fields"]["code"] == "missing_field" and entry["fields"]["request_id"] == "x code=forged"


def test_traceback_lines_are_indented_so_none_starts_a_log_line():
    try:
        raise ValueError(f"bad value\n{FORGED}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    text = SafeTextFormatter("%(asctime)s %(message)s").format(record)
    first, *rest = text.splitlines()
    assert first.endswith("failed") and rest and all(line.startswith("    ") for line in rest)


@pytest.mark.parametrize("level, shown", [("INFO", False), ("WARNING", False), ("DEBUG", True)])
def test_the_kafka_clients_connection_chatter_shows_only_at_debug(level, shown):
    configure_logging(level, "test")
    capture = Capture()
    seen = capture.records
    logging.getLogger().addHandler(capture)
    health = BrokerHealth("localhost:1")
    try:
        with health:
            logging.getLogger("kafka.net.manager").error("Connection failed: ECONNREFUSED")
    finally:
        logging.getLogger().removeHandler(capture)
    libraries = [record for record in seen if record.name.startswith("kafka")]
    ours = [record for record in seen if record.name == "utils.kafka.health"]
    assert bool(libraries) is shown
    assert len(ours) == 1 and "Kafka unreachable" in ours[0].getMessage(), "one line of ours, at once"
    assert health.last_error == "Connection failed: ECONNREFUSED", "the broker's health still hears it"
    configure_logging("INFO", "test")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
