"""What every entry script does around its run(): logging, stop signals, and clear exits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from utils.data import DataIntegrityError
from utils.kafka_io import BrokerUnavailable, KafkaAuthenticationError
from utils.logs import configure_logging
from utils.shutdown import StopRequested, stop_on_signals

log = logging.getLogger(__name__)
Settings = TypeVar("Settings")

EXIT_CONFIGURATION = 2  # e.g. bad data files, no model yet
EXIT_AUTHENTICATION = 3


def run_service(name: str, run: Callable[[Settings, threading.Event], int], settings: Settings) -> int:
    configure_logging(settings.common.log_level, name, settings.common.log_format)
    stop = stop_on_signals()
    try:
        return run(settings, stop)
    except KafkaAuthenticationError as error:
        log.error("authentication failed, stopping: %s", error)
        return EXIT_AUTHENTICATION
    except DataIntegrityError as error:
        log.error("data check failed: %s", error)
        return EXIT_CONFIGURATION
    except StopRequested as error:
        log.info("stopped: %s", error)
        return 0
    except BrokerUnavailable as error:
        log.info("stopped before the broker answered: %s", error)
        return 0
