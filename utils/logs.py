"""Logging set-up, called once by each entry script."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str, service: str) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s service={service} %(name)s: %(message)s",
        force=True,
    )
    # Client libraries are chatty at INFO (every connection, every rebalance step).
    for noisy in ("kafka", "mlflow", "alembic", "urllib3", "git", "hyperopt"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
