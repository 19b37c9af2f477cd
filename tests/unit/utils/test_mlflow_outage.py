import logging
import threading

import pytest
import requests
from mlflow.exceptions import MlflowException

from utils import mlflow_outage
from utils.mlflow_outage import TrackingUnavailable, call_when_up, is_outage
from utils.shutdown import StopRequested


def wrapped(inner: BaseException) -> MlflowException:
    try:
        raise inner
    except BaseException as cause:
        try:
            raise MlflowException("API request to endpoint failed") from cause
        except MlflowException as outer:
            return outer


@pytest.mark.parametrize(
    "error, outage",
    [
        (requests.exceptions.ConnectionError("refused"), True),
        (requests.exceptions.ReadTimeout("slow"), True),
        (ConnectionRefusedError(111, "refused"), True),
        (wrapped(requests.exceptions.ConnectionError("refused")), True),
        (MlflowException("API request failed with exception Max retries exceeded with url"), True),
        (MlflowException("RESOURCE_DOES_NOT_EXIST: registered model not found"), False),
        (ValueError("bad param"), False),
    ],
)
def test_an_outage_is_told_from_a_refusal(error, outage):
    assert is_outage(error) is outage


def test_waits_out_an_outage_with_one_line_then_returns(monkeypatch, caplog):
    monkeypatch.setattr(mlflow_outage, "BACKOFF_START_S", 0.01)
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) < 4:
            raise requests.exceptions.ConnectionError("refused")
        return "done"

    with caplog.at_level(logging.INFO, logger="utils.mlflow_outage"):
        assert call_when_up(flaky, "http://tracking", threading.Event()) == "done"
    assert len(attempts) == 4
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO]  # down once, up once


def test_a_real_error_is_not_retried():
    calls = []

    def refused():
        calls.append(1)
        raise MlflowException("INVALID_PARAMETER_VALUE: no")

    with pytest.raises(MlflowException):
        call_when_up(refused, "http://tracking", threading.Event())
    assert len(calls) == 1


def test_a_stop_ends_the_wait():
    stop = threading.Event()
    stop.set()

    def down():
        raise TrackingUnavailable("down")

    with pytest.raises(StopRequested):
        call_when_up(down, "http://tracking", stop)
