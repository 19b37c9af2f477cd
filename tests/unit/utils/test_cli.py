"""Entry scripts: exit codes for the errors that end a service, and the docs' tables."""

import threading

import pytest

from utils.cli import (
    EXIT_ACCESS_DENIED,
    EXIT_CONFIGURATION,
    EXIT_OK,
    EXIT_REGISTRY_UNAVAILABLE,
    EXIT_TRACKING_UNAVAILABLE,
    exit_code_for,
    markdown_table,
    run_service,
    settings_of,
)
from utils.data import DataIntegrityError
from utils.kafka.interface import AuthenticationFailed, AuthorizationFailed, BrokerUnavailable, ProducerFenced
from utils.mlflow_outage import TrackingUnavailable
from utils.schema_registry.client import RegistryUnavailable, SchemaRefused
from utils.settings import SCRIPTS, PredictorSettings
from utils.shutdown import StopRequested


@pytest.mark.parametrize(
    "error, code",
    [
        (AuthenticationFailed("bad password"), EXIT_ACCESS_DENIED),
        (AuthorizationFailed("no ACL"), EXIT_ACCESS_DENIED),
        (ProducerFenced("zombie"), EXIT_CONFIGURATION),
        (DataIntegrityError("bad digest"), EXIT_CONFIGURATION),
        (StopRequested("signal"), EXIT_OK),
        (TrackingUnavailable("down"), EXIT_TRACKING_UNAVAILABLE),
        (ConnectionRefusedError("mlflow down"), EXIT_TRACKING_UNAVAILABLE),
        (SchemaRefused("incompatible"), EXIT_CONFIGURATION),
        (RegistryUnavailable("down"), EXIT_REGISTRY_UNAVAILABLE),
    ],
)
def test_errors_that_end_a_service_have_an_exit_code(error, code):
    outcome = exit_code_for(error)
    assert outcome is not None and outcome[0] == code


@pytest.mark.parametrize("error", [ValueError("a bug"), KeyError("x"), BrokerUnavailable("retried by services")])
def test_other_errors_are_bugs_and_keep_their_traceback(error):
    assert exit_code_for(error) is None


def test_run_service_returns_the_code_and_raises_bugs(monkeypatch):
    monkeypatch.setattr("utils.cli.stop_on_signals", threading.Event)
    monkeypatch.setattr("utils.cli.configure_logging", lambda *_: None)
    settings = PredictorSettings()

    def denied(_settings, _stop):
        raise AuthorizationFailed("no ACL")

    def buggy(_settings, _stop):
        raise ZeroDivisionError

    assert run_service("test", denied, settings) == EXIT_ACCESS_DENIED
    assert run_service("test", lambda _settings, _stop: 0, settings) == EXIT_OK
    with pytest.raises(ZeroDivisionError):
        run_service("test", buggy, settings)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_the_docs_table_has_a_row_per_setting(script):
    table = markdown_table(SCRIPTS[script]).splitlines()
    assert len(table) == 2 + len(settings_of(SCRIPTS[script]))


def test_flags_are_unique_within_each_script():
    for script, settings_class in SCRIPTS.items():
        flags = [flag for setting in settings_of(settings_class) for flag in setting.flags]
        assert len(flags) == len(set(flags)), script
