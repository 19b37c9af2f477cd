"""What every entry script does around its run(): logging, stop signals, and clear exits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

from utils.data import DataIntegrityError
from utils.kafka.interface import AuthenticationFailed, AuthorizationFailed, ProducerFenced
from utils.logs import configure_logging
from utils.settings import CommonSettings
from utils.shutdown import StopRequested, stop_on_signals
from utils.tracking import TrackingUnavailable, configure_http_retries, is_outage

log = logging.getLogger(__name__)

EXIT_CONFIGURATION = 2  # e.g. bad data files, no model yet
EXIT_ACCESS_DENIED = 3  # wrong credentials, untrusted certificate, or an ACL that forbids the job
EXIT_TRACKING_UNAVAILABLE = 4  # a one-shot command (initialize, rollback) found MLflow down: run it again


class ServiceSettings(Protocol):
    @property
    def common(self) -> CommonSettings: ...


Settings = TypeVar("Settings", bound=ServiceSettings)


def run_service(name: str, run: Callable[[Settings, threading.Event], int], settings: Settings) -> int:
    """Configure logging, turn SIGINT/SIGTERM into a stop event, run, and map failures to exit codes."""
    configure_logging(settings.common.log_level, name, settings.common.log_format)
    configure_http_retries()
    stop = stop_on_signals()
    try:
        return run(settings, stop)
    except AuthenticationFailed as error:
        log.error("authentication failed, stopping: %s", error)
        return EXIT_ACCESS_DENIED
    except AuthorizationFailed as error:
        log.error("access denied, stopping: %s", error)
        return EXIT_ACCESS_DENIED
    except ProducerFenced as error:
        log.error("another instance took over this transactional id (--instance-slot), stopping: %s", error)
        return EXIT_CONFIGURATION
    except DataIntegrityError as error:
        log.error("data check failed: %s", error)
        return EXIT_CONFIGURATION
    except StopRequested as error:
        log.info("stopped: %s", error)
        return 0
    except Exception as error:
        if not (isinstance(error, TrackingUnavailable) or is_outage(error)):
            raise
        log.error("MLflow unreachable at %s, stopping: run this again once it answers", settings.common.tracking_uri)
        return EXIT_TRACKING_UNAVAILABLE
