"""The MLflow tracking server as a dependency that may be down: probe it, wait for it, and tell an
outage from a real error. Shared by the trainer, initialize, rollback and predictors that fetch
models from the registry."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from utils import metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0
# MLflow retries each HTTP call up to 7 times with exponential backoff (minutes in all) and logs a
# urllib3 warning per attempt. The services wait and retry themselves, at their own pace, with one
# line per outage: a short retry budget per call is enough. setdefault: an operator's choice wins.
HTTP_RETRY_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


class TrackingUnavailable(RuntimeError):
    """The tracking server (or its store) could not be reached: retrying later may succeed."""


def configure_http_retries() -> None:
    """Short per-call retries for MLflow's HTTP client (the services do the waiting)."""
    for name, value in HTTP_RETRY_DEFAULTS.items():
        os.environ.setdefault(name, value)
    logging.getLogger("urllib3.connectionpool").addFilter(_drop_retry_warnings)


def _drop_retry_warnings(record: logging.LogRecord) -> bool:
    """urllib3's per-attempt "Retrying (...)" warnings: an outage is said once, by wait_for_tracking."""
    return not (isinstance(record.msg, str) and record.msg.startswith("Retrying"))


def is_outage(error: BaseException) -> bool:
    """True for errors that mean "the server is not answering", as opposed to a request it refused."""
    import requests
    from mlflow.exceptions import MlflowException

    for cause in _chain(error):
        if isinstance(cause, requests.exceptions.ConnectionError | requests.exceptions.Timeout | ConnectionError):
            return True
        if isinstance(cause, MlflowException) and (
            "Max retries exceeded" in cause.message or cause.get_http_status_code() in (502, 503, 504)
        ):
            return True
    return False


def _chain(error: BaseException | None):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def probe(tracking_uri: str) -> None:
    """One cheap request to the tracking store; TrackingUnavailable if it does not answer."""
    from mlflow import MlflowClient

    try:
        MlflowClient(tracking_uri).search_experiments(max_results=1)
    except Exception as error:
        if is_outage(error):
            raise TrackingUnavailable(f"MLflow unreachable at {tracking_uri}: {_first_line(error)}") from error
        raise


def wait_for_tracking(tracking_uri: str, stop: threading.Event) -> None:
    """Return once the tracking store answers; while it does not, say so once and retry with a
    capped backoff. Raises StopRequested if asked to stop first."""
    call_when_up(lambda: probe(tracking_uri), tracking_uri, stop)


def call_when_up(action: Callable[[], T], tracking_uri: str, stop: threading.Event) -> T:
    """`action()`, retried with a capped backoff for as long as it fails with an outage."""
    from utils.shutdown import StopRequested

    delay, down_since = BACKOFF_START_S, None
    while True:
        try:
            result = action()
        except Exception as error:
            if not (isinstance(error, TrackingUnavailable) or is_outage(error)):
                raise
            if down_since is None:
                metrics.MLFLOW_REACHABLE.set(0)
                down_since = time.monotonic()
                log.warning("MLflow unreachable at %s, waiting and retrying error=%s", tracking_uri, _first_line(error))
            if stop.wait(delay):
                raise StopRequested(f"stopped while waiting for MLflow at {tracking_uri}") from error
            delay = min(delay * 2, BACKOFF_MAX_S)
            continue
        metrics.MLFLOW_REACHABLE.set(1)
        if down_since is not None:
            log.info("MLflow reachable again uri=%s after_s=%.0f", tracking_uri, time.monotonic() - down_since)
        return result


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
