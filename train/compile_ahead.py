"""Building a newly serving version's compiled form in the background, so that predictors find it
ready (utils/compiled_cache.py). One build at a time: a build takes tens of seconds of CPU, so while
one runs, newer versions are left to the predictors, which compile only the version they serve."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from utils.compiled_cache import start_build

log = logging.getLogger(__name__)


class CompileAhead:
    def __init__(self, store_root: Path, niceness: int):
        self.store_root = store_root
        self.niceness = niceness
        self._build: subprocess.Popen | None = None

    def start(self, version: int) -> None:
        if self._build is not None and self._build.poll() is None:
            log.info("compiled form left to the predictors version=%s (a build is running)", version)
            return
        self._build = start_build(self.store_root, version, self.niceness)
        if self._build is not None:
            log.info("compiled form being built version=%s pid=%s", version, self._build.pid)
