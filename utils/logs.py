"""Logging set-up, called once by each entry script: human-readable lines by default, or one JSON
object per line (`--log-format json`) for log collectors.

Values in log lines can come from messages (a request id, a field value in an error): whatever they
hold, they cannot forge a log line. The text format escapes control and separator characters in
the message and indents the lines of a traceback; the JSON format is one JSON object per line, with
the `key=value` fields taken from the message template and its arguments, not parsed back out of
the text.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Our messages read "event happened key=value key=value": the JSON form splits them up.
FIELD = re.compile(r"(\w+)=(\S+)")
# A %-placeholder of a message template, with the `key=` that names it, if any.
PLACEHOLDER = re.compile(r"(?:(\w+)=)?%(?:\(\w+\))?[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?([diouxXeEfFgGcrsa%])")
# C0 and C1 controls, DEL, and the Unicode characters that break or reorder a line when displayed.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
TRACEBACK_INDENT = "    "
KAFKA_LOGGER = "kafka"  # kafka-python's loggers, and librdkafka's lines (utils/kafka/confluent.py)


def escape_unsafe(text: str) -> str:
    """Control and separator characters as visible escapes (\\n, \\x1b, \\u2028)."""
    return UNSAFE.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)


def template_fields(record: logging.LogRecord) -> dict[str, str] | None:
    """key -> value for each `key=%s` of the template, from the record's arguments; None if the
    template and the arguments do not line up."""
    if not isinstance(record.msg, str) or not isinstance(record.args, tuple):
        return None
    fields: dict[str, str] = {}
    position = 0
    for found in PLACEHOLDER.finditer(record.msg):
        key, conversion = found.groups()
        if conversion == "%":
            continue
        if position >= len(record.args):
            return None
        if key:
            fields[key] = str(record.args[position])
        position += 1
    return fields if position == len(record.args) else None


class SafeTextFormatter(logging.Formatter):
    """logging.Formatter whose lines cannot be forged by the values they carry."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        safe = copy.copy(record)
        safe.message = escape_unsafe(record.message)
        return super().formatMessage(safe)

    def formatException(self, ei: Any) -> str:
        lines = super().formatException(ei).splitlines()
        return "\n".join(TRACEBACK_INDENT + escape_unsafe(line) for line in lines)

    def formatStack(self, stack_info: str) -> str:
        return "\n".join(TRACEBACK_INDENT + escape_unsafe(line) for line in stack_info.splitlines())


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        fields = template_fields(record)
        template = record.msg if isinstance(record.msg, str) and fields is not None else message
        first_field = FIELD.search(template) if fields is not None else FIELD.search(message)
        event = template[: first_field.start()].strip() if first_field else message
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "event": event or message,
            "fields": fields if fields is not None else dict(FIELD.findall(message)),
            "message": message,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)  # escapes every control character: one line, valid JSON


def configure_logging(level: str, service: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(SafeTextFormatter(f"%(asctime)s %(levelname)s service={service} %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Client libraries are chatty at INFO (every connection, every rebalance step).
    for noisy in ("mlflow", "alembic", "urllib3", "git", "hyperopt", "httpx", "httpx2", "httpcore2"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    # The Kafka clients log every failed connection attempt (kafka-python one every 80 ms while a
    # broker is down): their records stay with utils/kafka/health.py, which says "unreachable" and
    # "reachable again" once each; --log-level debug shows them all.
    kafka = logging.getLogger(KAFKA_LOGGER)
    debug = logging.getLogger().level <= logging.DEBUG
    kafka.setLevel(logging.DEBUG if debug else logging.ERROR)
    kafka.propagate = debug
    if not any(isinstance(handler, logging.NullHandler) for handler in kafka.handlers):
        kafka.addHandler(logging.NullHandler())  # else Python's last-resort handler prints them
