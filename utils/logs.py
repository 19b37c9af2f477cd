"""Logging set-up, called once by each entry script: human-readable lines by default, or one JSON
object per line (`--log-format json`) for log collectors."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

# Our messages read "event happened key=value key=value": the JSON form splits them up.
FIELD = re.compile(r"(\w+)=(\S+)")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        first_field = FIELD.search(message)
        event = message[: first_field.start()].strip() if first_field else message
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "event": event or message,
            "fields": dict(FIELD.findall(message)),
            "message": message,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str, service: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s service={service} %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Client libraries are chatty at INFO (every connection, every rebalance step).
    for noisy in ("kafka", "mlflow", "alembic", "urllib3", "git", "hyperopt"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
